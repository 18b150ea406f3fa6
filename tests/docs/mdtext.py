"""Reading the project's markdown for the documentation checks: fenced blocks, links outside code,
GitHub's heading slugs, citations of paths outside the repository, and the core's error codes."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")

# Paths of the material the project was written from, which is not part of the repository.
FORBIDDEN = [
    re.compile(r"\.\./shared\b"),
    re.compile(r"/work/"),
    re.compile(r"(?<![\w.-])(?:spec|reference|research)/[\w.-]+\.(?:md|txt)"),
    re.compile(r"aliyun-api-gateway-faq"),
]


def markdown_files():
    """README.md and every page under docs/."""
    files = [os.path.join(ROOT, "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return [f for f in files if os.path.isfile(f)]


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def code_blocks(path):
    """Every fenced block: (line of its opening fence, info string, text)."""
    out, lines, i = [], _read(path), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start, body = m.group(2), m.group(3).strip(), i + 1, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), lines[i]):
            body.append(lines[i])
            i += 1
        out.append((start, info, "\n".join(body) + "\n"))
        i += 1
    return out


def prose_lines(path):
    """(line number, text) of the lines outside fenced blocks, inline code spans blanked."""
    out, fence = [], None
    for n, line in enumerate(_read(path), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
            continue
        if fence is not None:
            if re.match(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), line):
                fence = None
            continue
        out.append((n, INLINE_CODE.sub(lambda c: " " * len(c.group(0)), line)))
    return out


def links(path):
    """(line number, target) of every markdown link outside code."""
    return [(n, m.group(1)) for n, line in prose_lines(path) for m in LINK.finditer(line)]


def slug(heading):
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed (letters of any
    script, digits, `_` and `-` kept), spaces to `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def heading_slugs(path):
    """The anchors of a page's headings, duplicates numbered as GitHub does (`-1`, `-2`)."""
    seen, out = {}, set()
    for _, line in _headings(path):
        base = slug(line)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def _headings(path):
    fence = None
    for n, line in enumerate(_read(path), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
            continue
        if fence is not None:
            if re.match(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence), line):
                fence = None
            continue
        h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if h:
            yield n, h.group(1)


def forbidden_citations(path):
    """(line number, text) of every line, code included, that cites a path outside the repository."""
    return [(n, line.strip()) for n, line in enumerate(_read(path), 1) if any(p.search(line) for p in FORBIDDEN)]


def error_codes():
    """(code, status) of every row of the core's error table (filter/core/src/contract/errors.rs)."""
    with open(os.path.join(ROOT, "filter", "core", "src", "contract", "errors.rs"), encoding="utf-8") as f:
        text = f.read()
    block = text[text.index("table! {"):]
    return re.findall(r"^\s+([A-Z][0-9]{3}[A-Z0-9]{2}) ([0-9]{3}) \"", block, re.M)
