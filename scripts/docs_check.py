#!/usr/bin/env python3
"""The docs check: what the README, the book, SECURITY.md and CONTRIBUTING.md say still holds.

For each document (README.md, the book's pages in SUMMARY.md's order, SECURITY.md,
CONTRIBUTING.md):

- every file path it names (in `inline code` or a relative link) must exist, and every test it
  names as `module::test` (with `*` for a prefix) must be in that module;
- every ```bash (or sh, shell) block runs, in order, in one bash shell per document, as a user
  would paste them into one terminal, against a fresh `m2m-local` (its own temporary
  M2M_DATA_DIR, a free loopback port written where the docs say 127.0.0.1:8080, the vendor
  credential it printed exported as the getting-started page says). Blocks are not `set -e`:
  each block runs whole, and the check fails if any command in it failed (an ERR trap, with
  pipefail so that `curl --fail-with-body ... | jq` counts curl's failure);
- a block with a line `# not run by the docs check: <reason>` is skipped and the reason printed.

The shell's PATH starts with the debug binaries (m2m-local, m2m-admin, m2m), which
`cargo test --workspace` has built; HOME is a temporary folder. M2M_TEST_AWS_ENDPOINT (moto),
when set, is passed on for blocks that use AWS mode.

    python3 scripts/docs_check.py            # every document
    python3 scripts/docs_check.py README.md  # some
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(TARGET if os.path.isabs(TARGET) else os.path.join(ROOT, TARGET), "debug")
SKIP = "# not run by the docs check:"
SHELLS = {"bash", "sh", "shell"}
DOCUMENT_TIMEOUT = 900  # seconds; a block that builds an example may compile for a while


def documents():
    docs = ["README.md"]
    summary = os.path.join(ROOT, "docs/src/SUMMARY.md")
    for link in re.findall(r"\]\(([^)]+\.md)\)", open(summary).read()):
        docs.append(os.path.join("docs/src", link))
    pages = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs/src/**/*.md"), recursive=True)}
    missing = pages - set(docs) - {"docs/src/SUMMARY.md"}
    included = {os.path.join("docs/src", m) for p in pages for m in re.findall(r"\{\{#include ([^}\s]+)\}\}", open(os.path.join(ROOT, p)).read())}
    if missing - included:
        fail(f"pages not in docs/src/SUMMARY.md: {sorted(missing - included)}")
    return docs + ["SECURITY.md", "CONTRIBUTING.md"]


def fail(message):
    print(f"docs check: {message}", file=sys.stderr)
    sys.exit(1)


def blocks(text):
    """(line, language, body) of each fenced block."""
    found, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+)\s*([\w-]*)", lines[i])
        if m:
            fence, lang, start, body = m.group(2), m.group(3), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i][len(m.group(1)):])
                i += 1
            found.append((start, lang, "\n".join(body) + "\n"))
        i += 1
    return found


# ---- paths and test names ------------------------------------------------------------------

TOP = ("scripts/", "tests/", "shared/", "functions/", "cli/", "verifier/", "docs/", ".ci/")
ROOT_FILES = ("template.yaml", "Cargo.toml", "Cargo.lock", "README.md", "SECURITY.md",
              "CONTRIBUTING.md", "clippy.toml", "book.toml")


def expand_braces(path):
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [q for alt in m.group(1).split(",") for q in expand_braces(path[:m.start()] + alt + path[m.end():])]


def check_paths(doc, text):
    """Every repository path the document names exists."""
    problems = []
    base = os.path.dirname(os.path.join(ROOT, doc))
    # Inline code anywhere (fenced blocks included: a layout block names paths too).
    for token in set(re.findall(r"`([^`\s]+)`", text)) | set(re.findall(r"(?m)^((?:%s)\S*)" % "|".join(map(re.escape, TOP)), text)):
        token = token.rstrip(".,;:)")
        if token.startswith(TOP) or token in ROOT_FILES:
            for path in expand_braces(token):
                if "{{" in path or not glob.glob(os.path.join(ROOT, path)):
                    problems.append(f"{doc}: names {path}, which does not exist")
    for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+:", link) or link.startswith("/"):
            continue
        if not os.path.exists(os.path.normpath(os.path.join(base, link))):
            problems.append(f"{doc}: links to {link}, which does not exist")
    return problems


def module_file(first):
    for folder in ("tests/api", "cli/tests", "shared/src"):
        path = os.path.join(ROOT, folder, first + ".rs")
        if os.path.exists(path):
            return path
    return None


def check_test_names(doc, text):
    """Every `module::test` the document cites is in that module."""
    problems = []
    for name in set(re.findall(r"`((?:[a-z_0-9]+::)+(?:[a-z_0-9]+\*?|\*))`", text)):
        parts = name.split("::")
        path = module_file(parts[0])
        if path is None:
            continue
        # `operations::bcrypt::x`: the deepest file the segments name.
        for i in range(1, len(parts) - 1):
            deeper = os.path.join(os.path.dirname(path), parts[0], *parts[1:i + 1]) + ".rs"
            deeper = os.path.join(ROOT, "shared/src", *parts[:i + 1]) + ".rs" if not os.path.exists(deeper) else deeper
            if os.path.exists(deeper):
                path = deeper
        source = open(path).read()
        last = parts[-1]
        if last == "*":
            continue
        pattern = (r"\b(?:fn|mod) " + re.escape(last[:-1]) + r"\w*") if last.endswith("*") else (r"\b(?:fn|mod) " + re.escape(last) + r"\b")
        if not re.search(pattern, source):
            problems.append(f"{doc}: cites {name}, not found in {os.path.relpath(path, ROOT)}")
    return problems


# ---- running the blocks --------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, work):
        self.port = free_port()
        self.out = open(os.path.join(work, "server.out"), "w+")
        env = dict(os.environ, M2M_DATA_DIR=os.path.join(work, "data"),
                   M2M_LISTEN=f"127.0.0.1:{self.port}", RUST_LOG="warn")
        self.proc = subprocess.Popen([os.path.join(BIN, "m2m-local")], env=env, stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=work)
        deadline = time.time() + 30
        while time.time() < deadline:
            self.out.seek(0)
            banner = self.out.read()
            if "listening on" in banner:
                self.client_id = re.search(r"M2M_VENDOR_CLIENT_ID=(\S+)", banner).group(1)
                self.secret = re.search(r"M2M_VENDOR_SECRET=(\S+)", banner).group(1)
                return
            if self.proc.poll() is not None:
                fail(f"m2m-local did not start:\n{banner}")
            time.sleep(0.1)
        self.stop()
        fail("m2m-local did not start within 30 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_document(doc, runnable):
    """Runs the document's blocks in one bash; returns a list of problems."""
    work = tempfile.mkdtemp(prefix="m2m-docs-")
    server = Server(work)
    api_port = free_port()
    home = os.path.join(work, "home")
    os.makedirs(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2M_") or k == "M2M_TEST_AWS_ENDPOINT"}
    venv = os.path.join(ROOT, os.environ.get("M2M_VENV", ".venv"), "bin")
    path = f"{BIN}:{venv}:{os.environ['PATH']}" if os.path.isdir(venv) else f"{BIN}:{os.environ['PATH']}"
    # The reader's terminal after getting started: the credential exported; M2M_URL and
    # M2M_DATA_DIR name the server they started (127.0.0.1:8080 and ./.m2m for them).
    real_home = os.path.expanduser("~")
    env.setdefault("RUSTUP_HOME", os.path.join(real_home, ".rustup"))
    env.setdefault("CARGO_HOME", os.path.join(real_home, ".cargo"))
    env.update(PATH=path, HOME=home, M2M_URL=f"http://127.0.0.1:{server.port}",
               M2M_DATA_DIR=os.path.join(work, "data"), XDG_CONFIG_HOME=os.path.join(home, ".config"),
               M2M_VENDOR_CLIENT_ID=server.client_id, M2M_VENDOR_SECRET=server.secret,
               CARGO_TARGET_DIR=os.path.dirname(BIN), TERM="dumb")
    script = ["set -E -o pipefail", "__docs_failed=0",
              "trap '__docs_rc=$?; __docs_failed=1; echo \"docs check: this failed (exit $__docs_rc): $BASH_COMMAND\" >&2' ERR"]
    for n, (line, body) in enumerate(runnable, 1):
        body = body.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}").replace("127.0.0.1:3000", f"127.0.0.1:{api_port}")
        path = os.path.join(work, f"block{n}.sh")
        open(path, "w").write(body)
        script += [f"echo '==> {doc}:{line}' >&2",
                   f"source {path}",
                   f"if [ \"$__docs_failed\" != 0 ]; then echo '@@failed {n}' >&2; exit 1; fi",
                   f"echo '@@ok {n}' >&2"]
    script.append("jobs -p | xargs -r kill 2>/dev/null; true")
    log_path = os.path.join(work, "shell.log")
    started = time.time()
    with open(log_path, "w") as log:
        shell = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        try:
            code = shell.wait(DOCUMENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = "timeout"
        finally:
            # The shell's process group: anything a block left running in the background.
            try:
                os.killpg(shell.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    server.stop()
    output = open(log_path).read()
    ok = len(re.findall(r"^@@ok \d+$", output, re.M))
    problems = []
    if code != 0 or ok != len(runnable):
        problems.append(f"{doc}: block {ok + 1} of {len(runnable)} (line {runnable[ok][0] if ok < len(runnable) else '?'}) failed "
                        f"(shell exit {code}); the shell printed:\n{output}\nthe server printed:\n{open(os.path.join(work, 'server.out')).read()}")
    else:
        print(f"    {len(runnable)} block(s) ran in {time.time() - started:.1f} s")
    shutil.rmtree(work, ignore_errors=True)
    return problems


def check_walkthrough_script():
    """scripts/walkthrough.sh holds the README's walk-through word for word."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", readme, re.S)
    if not m:
        return ["README.md: no <!-- walkthrough:start --> block"]
    if m.group(1) not in open(os.path.join(ROOT, "scripts/walkthrough.sh")).read():
        return ["scripts/walkthrough.sh does not hold the README's walk-through word for word"]
    return []


def main():
    docs = sys.argv[1:] or documents()
    problems, total_run, total_skipped = check_walkthrough_script(), 0, 0
    if not os.path.exists(os.path.join(BIN, "m2m-local")):
        fail(f"{BIN}/m2m-local is missing: run cargo build first (scripts/test.sh runs cargo test --workspace)")
    for doc in docs:
        text = open(os.path.join(ROOT, doc)).read()
        problems += check_paths(doc, text) + check_test_names(doc, text)
        runnable, skipped = [], []
        for line, lang, body in blocks(text):
            if lang not in SHELLS:
                continue
            reason = next((l.strip()[len(SKIP):].strip() for l in body.split("\n") if l.strip().startswith(SKIP)), None)
            (skipped if reason is not None else runnable).append((line, reason if reason is not None else body))
        print(f"==> {doc}: {len(runnable)} shell block(s) to run, {len(skipped)} skipped")
        for line, reason in skipped:
            print(f"    skipped {doc}:{line}: {reason}")
        total_run += len(runnable)
        total_skipped += len(skipped)
        if runnable:
            problems += run_document(doc, runnable)
    for problem in problems:
        print(f"docs check: {problem}", file=sys.stderr)
    print(f"\ndocs: {total_run} blocks run, {total_skipped} skipped, {len(docs)} documents, "
          f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
