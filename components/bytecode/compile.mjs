// Compile every .py under a directory into __pycache__/*.cpython-313.pyc with CPython 3.13 (Pyodide's build,
// WebAssembly: the same interpreter, so the same bytes, on every machine that runs it).
//
//   node compile.mjs <tree> <lambda-dir>
//
// The bytecode is hash-based and unchecked (no timestamps inside, never re-checked against sources that cannot
// change on Lambda), and names its source as Lambda will find it: <tree>/x.py becomes <lambda-dir>/x.py.
// Exit code 0 when every file compiled, 1 otherwise (the errors are printed), 2 on a usage error.
import { loadPyodide } from "pyodide";

const [tree, lambdaDir] = process.argv.slice(2);
if (!tree || !lambdaDir) {
  process.stderr.write("usage: node compile.mjs <tree> <lambda-dir>\n");
  process.exit(2);
}
const pyodide = await loadPyodide({
  env: { PYTHONHASHSEED: "0" },
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
pyodide.FS.mkdirTree("/build");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: tree }, "/build");
pyodide.globals.set("lambda_dir", lambdaDir);
const ok = pyodide.runPython(`
import compileall, py_compile
compileall.compile_dir(
    "/build", quiet=1, stripdir="/build", prependdir=lambda_dir,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
)
`);
process.exit(ok ? 0 : 1);
