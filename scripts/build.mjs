// `npm run build`: lib/ → dist/ (ESM, the package's main build) and dist/cjs/ (CommonJS, what `require()` loads, so
// CommonJS test runners such as Jest's default set-up work without a transform of node_modules). Both builds keep their
// process-wide state in one place (lib/shared-state.ts), so an app that loads both never sees two disagreeing copies.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function compile(project) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, '-p', project], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tsc -p ${project} failed`))));
  });
}

rmSync('dist', { recursive: true, force: true });
try {
  await Promise.all([compile('tsconfig.build.json'), compile('tsconfig.cjs.json')]);
} catch (err) {
  console.error(`${err.message}: fix the TypeScript errors above`);
  process.exit(1);
}
// the package is "type": "module"; this marks dist/cjs/*.js (and its .d.ts) as CommonJS
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
