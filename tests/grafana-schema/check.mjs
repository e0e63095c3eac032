// Type-checks Grafana dashboard JSON files against the `Dashboard` type of Grafana's published
// schema package (@grafana/schema): each file becomes a TypeScript object literal annotated with
// that type and the TypeScript compiler checks it (unknown fields, wrong types, bad enum values).
// Usage: node check.mjs FILE.json...  Exit status 0 when every file conforms.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check.mjs FILE.json...');
  process.exit(2);
}
// Inside this directory, so that `@grafana/schema` resolves from its node_modules.
const work = mkdtempSync(join(here, '.check-'));
try {
  const sources = files.map((f) => {
    const ts_file = join(work, basename(f).replace(/\.json$/, '') + '.ts');
    // The schema's string enums (ThresholdsMode, MappingType, ...) are nominal in TypeScript; a
    // JSON model holds their values, so each enum is read as the union of its values.
    writeFileSync(
      ts_file,
      `import type { Dashboard } from '@grafana/schema';\n` +
        `type Literal<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T : ` +
        `T extends Array<infer U> ? Array<Literal<U>> : T extends object ? { [K in keyof T]: Literal<T[K]> } : T;\n` +
        `export const dashboard: Literal<Dashboard> = ${readFileSync(f, 'utf8')};\n`,
    );
    return ts_file;
  });
  const program = ts.createProgram(sources, {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  for (const d of diagnostics) {
    const where = d.file ? `${basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : '';
    console.error(where + ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }
  if (diagnostics.length > 0) process.exit(1);
  console.log(`${files.length} dashboard(s) conform to @grafana/schema's Dashboard`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
