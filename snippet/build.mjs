// Builds what the server serves from the readable sources: dist/shim.min.js (at /widget/{app_id}) and
// dist/panel.min.js (at /widget/{app_id}/panel.js) and dist/messages.min.js (at /widget/{app_id}/messages.js). Run: npm --prefix snippet ci && npm --prefix snippet run build
//
// The first line of each output names the sha256 of the source it was built from, so that
// tests/test_snippet.py can tell, without node, that the committed dist is fresh.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const here = dirname(fileURLToPath(import.meta.url));
mkdirSync(join(here, 'dist'), { recursive: true });

for (const name of ['shim', 'panel', 'messages']) {
  const source = readFileSync(join(here, name + '.js'), 'utf8');
  const sha = createHash('sha256').update(source, 'utf8').digest('hex');
  const result = await minify(source, {
    // ES2017 in, ES2017 out: terser never introduces newer syntax (and does not transpile older).
    ecma: 2017,
    compress: { ecma: 2017, passes: 3, unsafe_arrows: true, pure_getters: true },
    mangle: true,
    format: { ecma: 2017, comments: false, preamble: '// trailmark ' + name + '.js sha256=' + sha },
  });
  writeFileSync(join(here, 'dist', name + '.min.js'), result.code + '\n');
  console.log('dist/' + name + '.min.js: ' + Buffer.byteLength(result.code) + ' B, from ' + name + '.js ' +
    sha.slice(0, 12));
}
