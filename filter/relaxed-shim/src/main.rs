//! `relaxed-shim hide IN OUT` / `relaxed-shim restore IN OUT`: lets a Wasm optimiser that cannot
//! read relaxed SIMD optimise a module that uses it. `relaxed-shim uses IN` prints the relaxed
//! instructions a module's code uses, one name a line, so the build can check that the default
//! module has them and the fixed-SIMD one (for runtimes without relaxed SIMD) has none.
//!
//! The Wasm build's RSA uses `f64x2.relaxed_madd` (filter/pubkey/src/rsa/mont_f64.rs), and the
//! binaryen `make build` runs (Debian's, version 108) knows only the proposal's early opcodes, so it
//! refuses the module. `hide` turns every relaxed SIMD instruction into a call to an imported
//! function of the same signature (module `cagate:relaxed-simd`, named after the instruction), which
//! any optimiser keeps as it is: a call to an import is opaque, and its operands and result are
//! those of the instruction. `restore` turns those calls back into the instructions and removes the
//! imports. Both renumber the functions the imports shift, everywhere an index appears, and both
//! validate what they write.

use std::fmt;
use std::process::ExitCode;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{EntityType, ImportSection, Instruction, Module, TypeSection, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef, Validator, WasmFeatures};

/// The import module of the stand-in functions.
const SHIM_MODULE: &str = "cagate:relaxed-simd";

/// One list of the relaxed SIMD instructions: the stand-in's name, its number of `v128` operands
/// (every one returns one `v128`), and the instruction as wasmparser and wasm-encoder spell it.
macro_rules! relaxed_ops {
    ($($name:literal $arity:literal $op:ident),* $(,)?) => {
        const OPS: &[(&str, u32)] = &[$(($name, $arity)),*];

        /// The position in `OPS` of a relaxed SIMD instruction.
        fn relaxed_index(op: &Operator<'_>) -> Option<usize> {
            [$(matches!(op, Operator::$op)),*].iter().position(|&hit| hit)
        }

        /// The instruction at a position of `OPS`.
        fn relaxed_instruction(i: usize) -> Option<Instruction<'static>> {
            [$(Instruction::$op),*].get(i).cloned()
        }
    };
}

relaxed_ops! {
    "i8x16.relaxed_swizzle" 2 I8x16RelaxedSwizzle,
    "i32x4.relaxed_trunc_f32x4_s" 1 I32x4RelaxedTruncF32x4S,
    "i32x4.relaxed_trunc_f32x4_u" 1 I32x4RelaxedTruncF32x4U,
    "i32x4.relaxed_trunc_f64x2_s_zero" 1 I32x4RelaxedTruncF64x2SZero,
    "i32x4.relaxed_trunc_f64x2_u_zero" 1 I32x4RelaxedTruncF64x2UZero,
    "f32x4.relaxed_madd" 3 F32x4RelaxedMadd,
    "f32x4.relaxed_nmadd" 3 F32x4RelaxedNmadd,
    "f64x2.relaxed_madd" 3 F64x2RelaxedMadd,
    "f64x2.relaxed_nmadd" 3 F64x2RelaxedNmadd,
    "i8x16.relaxed_laneselect" 3 I8x16RelaxedLaneselect,
    "i16x8.relaxed_laneselect" 3 I16x8RelaxedLaneselect,
    "i32x4.relaxed_laneselect" 3 I32x4RelaxedLaneselect,
    "i64x2.relaxed_laneselect" 3 I64x2RelaxedLaneselect,
    "f32x4.relaxed_min" 2 F32x4RelaxedMin,
    "f32x4.relaxed_max" 2 F32x4RelaxedMax,
    "f64x2.relaxed_min" 2 F64x2RelaxedMin,
    "f64x2.relaxed_max" 2 F64x2RelaxedMax,
    "i16x8.relaxed_q15mulr_s" 2 I16x8RelaxedQ15mulrS,
    "i16x8.relaxed_dot_i8x16_i7x16_s" 2 I16x8RelaxedDotI8x16I7x16S,
    "i32x4.relaxed_dot_i8x16_i7x16_add_s" 3 I32x4RelaxedDotI8x16I7x16AddS,
}

#[derive(Debug)]
struct ShimError(String);

impl fmt::Display for ShimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShimError {}

type Error = reencode::Error<ShimError>;

fn user(msg: String) -> Error {
    reencode::Error::UserError(ShimError(msg))
}

/// What `hide` needs to know before it rewrites: the module's types and imported functions (and
/// whether it has the two sections the stand-ins go into), and which relaxed instructions its code
/// uses (positions in `OPS`, in first-use order).
struct Survey {
    types: u32,
    imported_funcs: u32,
    type_section: bool,
    import_section: bool,
    used: Vec<usize>,
}

fn survey(wasm: &[u8]) -> Result<Survey, Error> {
    let mut s = Survey { types: 0, imported_funcs: 0, type_section: false, import_section: false, used: Vec::new() };
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(section) => {
                s.type_section = true;
                for group in section {
                    s.types += group?.types().len() as u32;
                }
            }
            Payload::ImportSection(section) => {
                s.import_section = true;
                for import in section.into_imports() {
                    if matches!(import?.ty, TypeRef::Func(_)) {
                        s.imported_funcs += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    if let Some(i) = relaxed_index(&ops.read()?) {
                        if !s.used.contains(&i) {
                            s.used.push(i);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// Relaxed instructions to calls of imported stand-ins, appended after the module's own imports
/// (so the module's functions move up by as many).
struct Hide {
    survey: Survey,
}

impl Hide {
    /// The type of a stand-in with `arity` operands: three types appended to the module's.
    fn type_of(&self, arity: u32) -> u32 {
        self.survey.types + arity - 1
    }
}

impl Reencode for Hide {
    type Error = ShimError;

    fn function_index(&mut self, func: u32) -> Result<u32, Error> {
        let s = &self.survey;
        Ok(if func >= s.imported_funcs { func + s.used.len() as u32 } else { func })
    }

    fn instruction<'a>(&mut self, op: Operator<'a>) -> Result<Instruction<'a>, Error> {
        match relaxed_index(&op) {
            Some(i) => {
                let s = &self.survey;
                let slot = s.used.iter().position(|&u| u == i).ok_or_else(|| user(format!("{} not surveyed", OPS[i].0)))?;
                Ok(Instruction::Call(s.imported_funcs + slot as u32))
            }
            None => reencode::utils::instruction(self, op),
        }
    }

    fn parse_type_section(&mut self, types: &mut TypeSection, section: wasmparser::TypeSectionReader<'_>) -> Result<(), Error> {
        reencode::utils::parse_type_section(self, types, section)?;
        for arity in 1..=3 {
            types.ty().function(vec![ValType::V128; arity], [ValType::V128]);
        }
        Ok(())
    }

    fn parse_import_section(&mut self, imports: &mut ImportSection, section: wasmparser::ImportSectionReader<'_>) -> Result<(), Error> {
        reencode::utils::parse_import_section(self, imports, section)?;
        for &i in &self.survey.used {
            let (name, arity) = OPS[i];
            imports.import(SHIM_MODULE, name, EntityType::Function(self.type_of(arity)));
        }
        Ok(())
    }
}

fn hide(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    let survey = survey(wasm)?;
    if survey.used.is_empty() {
        return Ok(wasm.to_vec());
    }
    // The stand-ins go into both: a module using SIMD without them is not one `make build` produces.
    if !(survey.type_section && survey.import_section) {
        return Err(user("the module has no type or no import section".into()));
    }
    let mut module = Module::new();
    Hide { survey }.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(module.finish())
}

/// Calls of the stand-ins back to the instructions, the stand-ins' imports removed (so the
/// functions after them move down).
struct Restore {
    /// Function index of each stand-in, with its position in `OPS`, in index order.
    shims: Vec<(u32, usize)>,
}

impl Reencode for Restore {
    type Error = ShimError;

    fn function_index(&mut self, func: u32) -> Result<u32, Error> {
        if self.shims.iter().any(|&(f, _)| f == func) {
            return Err(user(format!("function {func}, a relaxed SIMD stand-in, is used other than by a call")));
        }
        Ok(func - self.shims.iter().filter(|&&(f, _)| f < func).count() as u32)
    }

    fn instruction<'a>(&mut self, op: Operator<'a>) -> Result<Instruction<'a>, Error> {
        if let Operator::Call { function_index } = op {
            if let Some(&(_, i)) = self.shims.iter().find(|&&(f, _)| f == function_index) {
                return relaxed_instruction(i).ok_or_else(|| user(format!("no instruction at {i}")));
            }
        }
        reencode::utils::instruction(self, op)
    }

    fn parse_import_section(&mut self, imports: &mut ImportSection, section: wasmparser::ImportSectionReader<'_>) -> Result<(), Error> {
        for import in section.into_imports() {
            let import = import?;
            if import.module != SHIM_MODULE {
                self.parse_import(imports, import)?;
            }
        }
        Ok(())
    }
}

fn restore(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    let mut shims = Vec::new();
    let mut func = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ImportSection(section) = payload? {
            for import in section.into_imports() {
                let import = import?;
                if !matches!(import.ty, TypeRef::Func(_)) {
                    continue;
                }
                if import.module == SHIM_MODULE {
                    let i = OPS.iter().position(|&(name, _)| name == import.name);
                    let i = i.ok_or_else(|| user(format!("unknown stand-in {}", import.name)))?;
                    shims.push((func, i));
                }
                func += 1;
            }
        }
    }
    if shims.is_empty() {
        return Ok(wasm.to_vec());
    }
    let mut module = Module::new();
    Restore { shims }.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(module.finish())
}

/// The relaxed SIMD instructions a module's code uses, in first-use order.
fn uses(wasm: &[u8]) -> Result<Vec<&'static str>, Error> {
    Ok(survey(wasm)?.used.into_iter().map(|i| OPS[i].0).collect())
}

fn validate(wasm: &[u8]) -> Result<(), String> {
    Validator::new_with_features(WasmFeatures::all()).validate_all(wasm).map(|_| ()).map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<(), String> {
    if let [cmd, input] = args {
        if cmd == "uses" {
            let wasm = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
            for name in uses(&wasm).map_err(|e| format!("{input}: {e}"))? {
                println!("{name}");
            }
            return Ok(());
        }
    }
    let [cmd, input, output] = args else {
        return Err("usage: relaxed-shim hide|restore IN.wasm OUT.wasm, or relaxed-shim uses IN.wasm".into());
    };
    let wasm = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let out = match cmd.as_str() {
        "hide" => hide(&wasm),
        "restore" => restore(&wasm),
        _ => return Err(format!("unknown command {cmd}: hide, restore or uses")),
    };
    let out = out.map_err(|e| match e {
        reencode::Error::ParseError(p) => format!("{input}: {p}"),
        e => format!("{input}: {e}"),
    })?;
    validate(&out).map_err(|e| format!("{cmd} {input} made an invalid module: {e}"))?;
    std::fs::write(output, out).map_err(|e| format!("{output}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relaxed-shim: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
