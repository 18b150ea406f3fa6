use super::*;
use wasm_encoder::{
    CodeSection, ConstExpr, ElementSection, Elements, ExportKind, ExportSection, Function, FunctionSection, RefType, TableSection, TableType,
};

/// A module with an import, a function using `f64x2.relaxed_madd` twice and `f32x4.relaxed_min`
/// once, a caller of it, and function indices in an export and in a table's element segment: every
/// place a shifted index must follow.
fn sample() -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], []);
    types.ty().function([ValType::V128; 3], [ValType::V128]);
    types.ty().function([], [ValType::I32]);
    let mut imports = ImportSection::new();
    imports.import("env", "log", EntityType::Function(0));
    let mut funcs = FunctionSection::new();
    funcs.function(1);
    funcs.function(2);
    let mut tables = TableSection::new();
    tables.table(TableType { element_type: RefType::FUNCREF, minimum: 2, maximum: None, table64: false, shared: false });
    let mut exports = ExportSection::new();
    exports.export("madd", ExportKind::Func, 1);
    exports.export("caller", ExportKind::Func, 2);
    let mut elements = ElementSection::new();
    elements.active(Some(0), &ConstExpr::i32_const(0), Elements::Functions([1, 2][..].into()));
    let mut code = CodeSection::new();
    let mut madd = Function::new([]);
    madd.instruction(&Instruction::LocalGet(0))
        .instruction(&Instruction::LocalGet(1))
        .instruction(&Instruction::LocalGet(2))
        .instruction(&Instruction::F64x2RelaxedMadd)
        .instruction(&Instruction::LocalGet(0))
        .instruction(&Instruction::F32x4RelaxedMin)
        .instruction(&Instruction::End);
    code.function(&madd);
    let mut caller = Function::new([]);
    for v in [1, 2, 3] {
        caller.instruction(&Instruction::V128Const(v));
    }
    caller
        .instruction(&Instruction::Call(1))
        .instruction(&Instruction::V128Const(4))
        .instruction(&Instruction::V128Const(5))
        .instruction(&Instruction::F64x2RelaxedMadd)
        .instruction(&Instruction::I32x4ExtractLane(0))
        .instruction(&Instruction::I32Const(7))
        .instruction(&Instruction::Call(0))
        .instruction(&Instruction::End);
    code.function(&caller);
    let mut m = Module::new();
    m.section(&types).section(&imports).section(&funcs).section(&tables);
    m.section(&exports).section(&elements).section(&code);
    m.finish()
}

/// Every function body's instructions, as text.
fn bodies(wasm: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionEntry(body) = payload.unwrap() {
            let mut ops = body.get_operators_reader().unwrap();
            let mut text = Vec::new();
            while !ops.eof() {
                text.push(format!("{:?}", ops.read().unwrap()));
            }
            out.push(text);
        }
    }
    out
}

/// The function indices of the exports and of the element segments.
fn references(wasm: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            Payload::ExportSection(s) => out.extend(s.into_iter().map(|e| e.unwrap().index)),
            Payload::ElementSection(s) => {
                for e in s {
                    if let wasmparser::ElementItems::Functions(f) = e.unwrap().items {
                        out.extend(f.into_iter().map(|f| f.unwrap()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn imports(wasm: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ImportSection(s) = payload.unwrap() {
            for i in s.into_imports() {
                let i = i.unwrap();
                out.push((i.module.to_string(), i.name.to_string()));
            }
        }
    }
    out
}

#[test]
fn hide_turns_relaxed_instructions_into_calls_of_imports_and_shifts_the_functions() {
    let original = sample();
    validate(&original).unwrap();
    assert_eq!(uses(&original).unwrap(), ["f64x2.relaxed_madd", "f32x4.relaxed_min"]);
    let hidden = hide(&original).unwrap();
    validate(&hidden).unwrap();
    assert!(uses(&hidden).unwrap().is_empty(), "no relaxed instruction left");
    let shim = |name: &str| (SHIM_MODULE.to_string(), name.to_string());
    assert_eq!(imports(&hidden), [("env".to_string(), "log".to_string()), shim("f64x2.relaxed_madd"), shim("f32x4.relaxed_min")]);
    // Two imports added after env.log: the module's functions 1 and 2 are now 3 and 4.
    assert_eq!(references(&hidden), [3, 4, 3, 4]);
    let b = bodies(&hidden);
    assert_eq!(b[0][3], "Call { function_index: 1 }");
    assert_eq!(b[0][5], "Call { function_index: 2 }");
    assert_eq!(b[1][3], "Call { function_index: 3 }", "the call to a shifted function follows it");
    assert_eq!(b[1][6], "Call { function_index: 1 }");
    assert_eq!(b[1][9], "Call { function_index: 0 }", "an import before the stand-ins keeps its index");
}

#[test]
fn restore_gives_back_the_original_instructions_and_indices() {
    let original = sample();
    let restored = restore(&hide(&original).unwrap()).unwrap();
    validate(&restored).unwrap();
    assert_eq!(imports(&restored), imports(&original));
    assert_eq!(references(&restored), references(&original));
    assert_eq!(bodies(&restored), bodies(&original));
}

#[test]
fn a_module_without_relaxed_instructions_passes_through_unchanged() {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    let mut code = CodeSection::new();
    let mut f = Function::new([]);
    f.instruction(&Instruction::End);
    code.function(&f);
    let mut m = Module::new();
    m.section(&types).section(&funcs).section(&code);
    let plain = m.finish();
    assert_eq!(hide(&plain).unwrap(), plain);
    assert_eq!(restore(&plain).unwrap(), plain);
}

#[test]
fn restore_refuses_a_stand_in_used_other_than_by_a_call() {
    // An optimiser that exported a stand-in would leave nothing to turn back into an instruction.
    let mut types = TypeSection::new();
    types.ty().function([ValType::V128; 3], [ValType::V128]);
    let mut imports = ImportSection::new();
    imports.import(SHIM_MODULE, "f64x2.relaxed_madd", EntityType::Function(0));
    let mut exports = ExportSection::new();
    exports.export("shim", ExportKind::Func, 0);
    let mut m = Module::new();
    m.section(&types).section(&imports).section(&exports);
    let err = restore(&m.finish()).unwrap_err();
    assert!(err.to_string().contains("stand-in"), "{err}");
}
