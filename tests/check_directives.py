#!/usr/bin/env python3
"""check_directives.py SOURCE_DIR: every directive mod_crane registers is
documented and configured completely.

The directive list comes from the source, not from a copy:
- the config_keys() table in lib/src/config/config.cpp (one directive per INI key,
  with its documented default_text), and
- the extra `t.push_back({"Crane...", directive_fn(walled_directive<SETTER, ...>), ...` entries of
  directive_table() in mod_crane/config.cpp.

For each directive it checks:
1. README.md names it (as `Name` in backquotes);
2. apache-conf/crane.conf names it in a comment line (that sample lists
   every directive);
3. it has a default: a non-empty "Default" cell in the README.md table
   row that documents it (every directive has one) and, for INI-key
   directives, a non-empty default_text in config_keys();
4. it has a merge rule: the ServerConf field its setter writes is read as
   both add->FIELD and base->FIELD in merge_server_conf(). INI-key
   directives all go through the generic `overrides` map, so for them
   set_config_key() must store into `overrides` and merge_server_conf()
   must carry both base->overrides and add->overrides.
   A server-config-only directive (its setter calls ap_check_cmd_context
   with GLOBAL_ONLY) sets a process-wide value and needs none.
It also flags any Crane* directive name that README.md or a sample under
apache-conf/ mentions but the module does not register (stale docs);
mod_status keys (CraneSnapshot0Generation, ...) are not directive names.

Prints one line per problem and a summary line
`check_directives: N directives, M problems`; exits 1 when M > 0 (or when
the source cannot be parsed), else 0.
"""

import os
import re
import sys

# a C string literal's body (no embedded quotes in this table, escapes allowed)
STR = r'"((?:[^"\\]|\\.)*)"'

# {"section", "key", "CraneDirective", KeyType::T, "default_text", ...
CONFIG_KEY_RE = re.compile(
    r'\{\s*' + STR + r'\s*,\s*' + STR + r'\s*,\s*"(Crane\w+)"\s*,\s*KeyType::(\w+)\s*,\s*' + STR)

# t.push_back({"CraneX", directive_fn(walled_directive<setter, ARG>), ...
EXTRA_RE = re.compile(r't\.push_back\(\s*\{\s*"(Crane\w+)"\s*,\s*directive_fn\(\s*walled_directive<\s*(\w+)\s*,[^>]*>\s*\)')

DIRECTIVE_NAME_RE = re.compile(r'\bCrane[A-Z][A-Za-z0-9]*\b')
# mod_status keys (CraneSnapshot0Generation, ...): not directives
STATUS_KEY_RE = re.compile(r'^CraneSnapshot\d')


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def function_body(source, name):
    """The text between the braces of the first definition of function
    `name` (a definition: its parameter list is followed by `{`)."""
    m = re.search(r'\b' + re.escape(name) + r'\s*\([^;{)]*\)\s*(?:const\s*)?(?:noexcept\s*)?\{', source)
    if not m:
        return None
    depth = 0
    start = m.end() - 1
    for i in range(start, len(source)):
        c = source[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return source[start + 1:i]
    return None


def config_table(config_cpp):
    """[(directive, section, key, type, default_text)] from config_keys()."""
    body = function_body(config_cpp, "config_keys")
    if body is None:
        return None
    return [(m.group(3), m.group(1), m.group(2), m.group(4), m.group(5))
            for m in CONFIG_KEY_RE.finditer(body)]


def extra_directives(mod_cpp):
    """[(directive, setter)] pushed by directive_table() itself."""
    body = function_body(mod_cpp, "directive_table")
    if body is None:
        return None
    return [(m.group(1), m.group(2)) for m in EXTRA_RE.finditer(body)]


def fields_set_by(setter_body):
    """ServerConf fields a setter assigns: `conf->F = ...` or
    `server_conf(cmd->server)->F = ...` (also `[...] =` for maps)."""
    fields = set()
    for m in re.finditer(r'(?:\bconf|server_conf\([^)]*\))\s*->\s*(\w+)\s*(?:\[[^\]]*\])?\s*=(?!=)', setter_body):
        fields.add(m.group(1))
    return fields


def readme_default_cells(readme):
    """{directive: default cell} from every Markdown table of README.md that
    has a "Default" column; the directive is the first Crane* name in the
    row's directive column (the first column naming a Crane directive)."""
    defaults = {}
    header = None
    for line in readme.splitlines():
        s = line.strip()
        if not s.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in re.split(r'(?<!\\)\|', s.strip("|"))]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if all(re.fullmatch(r':?-+:?', c) for c in cells if c):
            continue  # the |---|---| separator
        if "default" not in header:
            continue
        dcol = header.index("default")
        for i, cell in enumerate(cells):
            if i == dcol:
                continue
            m = DIRECTIVE_NAME_RE.search(cell)
            if m and "directive" in header[i]:
                defaults.setdefault(m.group(0), cells[dcol] if dcol < len(cells) else "")
                break
    return defaults


def comment_lines(text):
    return "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))


def main(argv):
    if len(argv) != 2:
        print("usage: check_directives.py SOURCE_DIR", file=sys.stderr)
        return 2
    src = argv[1]
    paths = {
        "config": os.path.join(src, "lib", "src", "config", "config.cpp"),
        "module": os.path.join(src, "mod_crane", "config.cpp"),
        "readme": os.path.join(src, "README.md"),
        "sample": os.path.join(src, "apache-conf", "crane.conf"),
    }
    try:
        texts = {k: read(p) for k, p in paths.items()}
    except OSError as e:
        print("check_directives: cannot read %s" % e, file=sys.stderr)
        return 1

    problems = []
    table = config_table(texts["config"])
    extras = extra_directives(texts["module"])
    if not table:
        problems.append("lib/src/config/config.cpp: no entries found in config_keys() (did its format change?)")
        table = []
    if not extras:
        problems.append("mod_crane/config.cpp: no t.push_back({\"Crane...\"}) entries found in "
                        "directive_table() (did its format change?)")
        extras = []
    if problems:
        for p in problems:
            print("check_directives: " + p)
        print("check_directives: 0 directives, %d problems" % len(problems))
        return 1

    ini_directives = [d for (d, *_rest) in table]
    extra_names = [d for (d, _setter) in extras]
    all_directives = ini_directives + extra_names
    seen = set()
    for d in all_directives:
        if d in seen:
            problems.append("%s: registered twice" % d)
        seen.add(d)

    readme = texts["readme"]
    sample_comments = comment_lines(texts["sample"])
    readme_defaults = readme_default_cells(readme)
    merge = function_body(texts["module"], "merge_server_conf") or ""
    if not merge:
        problems.append("mod_crane/config.cpp: merge_server_conf() not found")

    def has_merge_rule(field):
        return (re.search(r'\badd\s*->\s*%s\b' % field, merge) is not None and
                re.search(r'\bbase\s*->\s*%s\b' % field, merge) is not None)

    # 1 + 2: documentation of every directive
    for d in all_directives:
        if not re.search(r'`%s\b[^`]*`' % d, readme):
            problems.append("%s: missing from README.md" % d)
        if not re.search(r'\b%s\b' % d, sample_comments):
            problems.append("%s: missing from the comments of apache-conf/crane.conf" % d)

    # every directive has a row in a README table with a Default column
    for d in all_directives:
        cell = readme_defaults.get(d)
        if cell is None:
            problems.append("%s: no row in a README.md table with a Default column" % d)
        elif not cell.strip():
            problems.append("%s: empty Default cell in README.md" % d)

    # 3 + 4 for the INI-key directives
    set_key = function_body(texts["module"], "set_config_key") or ""
    generic_merge_ok = "overrides" in fields_set_by(set_key) and has_merge_rule("overrides")
    for (d, section, key, ktype, default_text) in table:
        if not default_text.strip():
            problems.append("%s ([%s] %s): empty default_text in config_keys()" % (d, section, key))
        if not generic_merge_ok:
            problems.append("%s ([%s] %s): no merge rule (set_config_key must store into `overrides` "
                            "and merge_server_conf must merge add->overrides over base->overrides)"
                            % (d, section, key))

    # 3 + 4 for the extra directives
    for (d, setter) in extras:
        body = function_body(texts["module"], setter)
        if body is None:
            problems.append("%s: setter %s() not found in mod_crane/config.cpp" % (d, setter))
            continue
        fields = fields_set_by(body)
        # a server-config-only directive (ap_check_cmd_context(cmd,
        # GLOBAL_ONLY)) sets one process-wide value: nothing to merge
        if not fields and "GLOBAL_ONLY" in body:
            continue
        if not fields:
            problems.append("%s: cannot tell which ServerConf field %s() sets" % (d, setter))
            continue
        for field in sorted(fields):
            if not has_merge_rule(field):
                problems.append("%s: ServerConf::%s (set by %s) has no merge rule in merge_server_conf "
                                "(needs add->%s and base->%s)" % (d, field, setter, field, field))

    # stale names: documented but not registered
    for label, text in (("README.md", readme),) + tuple(
            ("apache-conf/" + name, read(os.path.join(src, "apache-conf", name)))
            for name in sorted(os.listdir(os.path.join(src, "apache-conf")))
            if os.path.isfile(os.path.join(src, "apache-conf", name))):
        for name in sorted(set(DIRECTIVE_NAME_RE.findall(text)) - seen):
            if STATUS_KEY_RE.match(name):
                continue
            problems.append("%s: mentions %s, which mod_crane does not register" % (label, name))

    for p in problems:
        print("check_directives: " + p)
    print("check_directives: %d directives, %d problems" % (len(all_directives), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
