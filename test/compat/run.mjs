// `npm run test:compat` (CI runs it after `npm test`): the combinations the README promises beyond the main suite's
// NestJS 12 + TypeORM 1.x, each installed the way a user installs them.
//
//   suite  the repository's whole test suite (`npm test`: every unit and e2e spec, SQLite, PostgreSQL, Redis/Bull) on
//          NestJS 11 + TypeORM 0.3, in a copy of the repository whose dev dependencies are swapped for those versions.
//   apps   for each "NestJS x + TypeORM y" block of the README's Install section: a fresh app (the dependencies
//          `nest new` gives it) runs that block and a driver block verbatim, with the packed tarball in place of
//          `nestjs-thorn` and a plain `npm install` (peer conflicts fail it); the shipped .d.ts must type-check with
//          skipLibCheck off; then the app runs test/compat/app/src/scenario.ts: NestJS 11 apps through the jest config
//          `nest new` writes (CommonJS + ts-jest, no transform recipe), NestJS 12 apps compiled by tsc and run by node
//          (Jest's CommonJS mode cannot load NestJS 12 itself, which is ESM-only, on Node < 24.9).
//
// Usage: node test/compat/run.mjs [suite] [apps] [app-id …]   (default: everything). Scratch directories live
// outside the repository (THORN_COMPAT_DIR, default <tmpdir>/nestjs-thorn-compat) so nothing resolves from its
// node_modules by accident.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../services.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const root = process.env.THORN_COMPAT_DIR ?? join(tmpdir(), 'nestjs-thorn-compat');
const args = process.argv.slice(2);
const want = (name) => args.length === 0 || args.includes(name);

// The dependencies `nest new` writes (@nestjs/schematics 11.1 / 12.0 application templates) that matter here; the
// CLI, linters and formatters are left out. NestJS 11 apps get TypeScript 5.7, the README's minimum.
const TEMPLATES = {
  11: {
    dependencies: {
      '@nestjs/common': '^11.0.1',
      '@nestjs/core': '^11.0.1',
      '@nestjs/platform-express': '^11.0.1',
      'reflect-metadata': '^0.2.2',
      rxjs: '^7.8.1',
    },
    devDependencies: {
      '@types/jest': '^30.0.0',
      '@types/node': '^24.0.0',
      jest: '^30.0.0',
      'ts-jest': '^29.2.5',
      typescript: '5.7.3',
    },
    scripts: { test: 'jest' },
    // verbatim from the NestJS 11 template's package.json
    jest: {
      moduleFileExtensions: ['js', 'json', 'ts'],
      rootDir: 'src',
      testRegex: '.*\\.spec\\.ts$',
      transform: { '^.+\\.(t|j)s$': 'ts-jest' },
      collectCoverageFrom: ['**/*.(t|j)s'],
      coverageDirectory: '../coverage',
      testEnvironment: 'node',
    },
  },
  12: {
    dependencies: {
      '@nestjs/common': '^12.0.1',
      '@nestjs/core': '^12.0.1',
      '@nestjs/platform-express': '^12.0.1',
      'reflect-metadata': '^0.2.2',
      rxjs: '^7.8.1',
    },
    devDependencies: {
      '@types/jest': '^30.0.0',
      '@types/node': '^24.0.0',
      typescript: '^6.0.2',
    },
    scripts: {},
  },
};

// README block titles → what the app checks. `driver` names the README driver block it runs after the combination.
const APPS = [
  {
    id: 'nest11-typeorm03',
    block: 'NestJS 11 + TypeORM 0.3',
    nest: 11,
    typeorm: /^0\.3\./,
    driver: 'SQLite',
  },
  {
    id: 'nest11-typeorm1',
    block: 'NestJS 11 + TypeORM 1.x',
    nest: 11,
    typeorm: /^1\./,
    driver: 'PostgreSQL',
  },
  {
    id: 'nest12-typeorm03',
    block: 'NestJS 12 + TypeORM 0.3',
    nest: 12,
    typeorm: /^0\.3\./,
    driver: 'PostgreSQL',
  },
  {
    id: 'nest12-typeorm1',
    block: 'NestJS 12 + TypeORM 1.x',
    nest: 12,
    typeorm: /^1\./,
    driver: 'PostgreSQL',
  },
];

// The suite's copy of the repository: these dev dependencies replace the main ones.
const SUITE_VERSIONS = {
  '@nestjs/bull': '^11.0.0',
  '@nestjs/common': '^11.0.0',
  '@nestjs/core': '^11.0.0',
  '@nestjs/platform-express': '^11.0.0',
  '@nestjs/swagger': '^11.0.0',
  '@nestjs/terminus': '^11.0.0',
  '@nestjs/testing': '^11.0.0',
  '@nestjs/typeorm': '^11.0.0',
  typeorm: '^0.3.21',
};
// not needed to run the tests (lint runs once, in the main checkout)
const SUITE_DROP = ['@eslint/js', 'eslint', 'prettier', 'typescript-eslint'];

const started = Date.now();
const secs = (t) => `${((Date.now() - t) / 1000).toFixed(0)} s`;

function run(cmd, argv, opts = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, argv, { stdio: opts.capture ? 'pipe' : 'inherit', ...opts });
    let out = '';
    child.stdout?.on('data', (c) => (out += c));
    child.stderr?.on('data', (c) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15 * 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 || opts.allowFailure) resolveRun({ code, out });
      else
        reject(new Error(`${[cmd, ...argv].join(' ')} failed (${signal ?? code})${out ? `:\n${out}` : ''}`));
    });
  });
}

const npm = (argv, cwd, opts = {}) => run('npm', [...argv, '--no-audit', '--no-fund'], { cwd, ...opts });

/** `# Title` → commands, for every paragraph of the bash blocks in the README's Install section. */
function readmeBlocks() {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const install = readme.split(/^## /m).find((s) => s.startsWith('Install\n'));
  if (!install) throw new Error('README has no "## Install" section');
  const blocks = new Map();
  for (const [, body] of install.matchAll(/```bash\n([\s\S]*?)```/g)) {
    for (const para of body.split(/\n\s*\n/)) {
      const lines = para.split('\n').filter((l) => l.trim());
      const title = lines[0]?.match(/^# (.+)$/)?.[1];
      if (title)
        blocks.set(
          title.replace(/\s*\(.*\)$/, ''),
          lines.slice(1).filter((l) => !l.startsWith('#')),
        );
    }
  }
  return blocks;
}

async function pack() {
  await run(process.execPath, ['scripts/build.mjs'], { cwd: repo });
  const dir = join(root, 'pack');
  mkdirSync(dir, { recursive: true });
  const { out } = await run('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: repo,
    capture: true,
  });
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  const files = info.files.map((f) => f.path);
  for (const must of [
    'LICENSE',
    'dist/index.js',
    'dist/cjs/index.js',
    'dist/cjs/package.json',
    'dist/cjs/index.d.ts',
  ])
    if (!files.includes(must)) throw new Error(`the packed package lacks ${must}`);
  return join(dir, info.filename);
}

async function suite() {
  const t = Date.now();
  const dir = join(root, 'suite-nest11-typeorm03');
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: repo,
    encoding: 'utf8',
  });
  for (const file of listed.split('\n')) {
    if (!file || file === 'node_modules' || file.startsWith('bench/results/')) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(repo, file), join(dir, file));
  }
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const name of SUITE_DROP) delete pkg.devDependencies[name];
  Object.assign(pkg.devDependencies, SUITE_VERSIONS);
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  rmSync(join(dir, 'package-lock.json'), { force: true });
  console.log(`\n== suite on NestJS 11 + TypeORM 0.3: npm install in ${dir}`);
  await npm(['install'], dir);
  const versions = installed(dir);
  console.log(`== suite: ${JSON.stringify(versions)}`);
  if (!versions['@nestjs/common'].startsWith('11.') || !versions.typeorm.startsWith('0.3.'))
    throw new Error('the suite copy did not get NestJS 11 + TypeORM 0.3');
  await run(process.execPath, ['test/run-tests.mjs'], { cwd: dir });
  console.log(`== suite on NestJS 11 + TypeORM 0.3 passed (${secs(t)})`);
}

function installed(dir) {
  const v = (name) =>
    JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
  return Object.fromEntries(['@nestjs/common', '@nestjs/typeorm', 'typeorm'].map((n) => [n, v(n)]));
}

async function app(spec, tarball, blocks, pgUrl) {
  const t = Date.now();
  const dir = join(root, `app-${spec.id}`);
  const template = TEMPLATES[spec.nest];
  mkdirSync(dir, { recursive: true });
  const { jest, ...rest } = template;
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify(
      { name: `compat-${spec.id}`, version: '0.0.0', private: true, ...rest, ...(jest ? { jest } : {}) },
      null,
      2,
    ),
  );
  cpSync(join(repo, 'test/compat/app'), dir, { recursive: true });
  const commands = [...(blocks.get(spec.block) ?? []), ...(blocks.get(spec.driver) ?? [])];
  if (!blocks.get(spec.block)?.length)
    throw new Error(`README Install section has no "# ${spec.block}" block`);
  if (!blocks.get(spec.driver)?.length)
    throw new Error(`README Install section has no "# ${spec.driver}" block`);
  console.log(`\n== app ${spec.id}: ${dir}`);
  for (const command of commands) {
    const local = command.replace(/(^|\s)nestjs-thorn(?=\s|$)/g, `$1${tarball}`);
    console.log(`$ ${command}`);
    await run('sh', ['-c', local], { cwd: dir });
  }
  const versions = installed(dir);
  console.log(`== ${spec.id}: ${JSON.stringify(versions)}`);
  if (!versions['@nestjs/common'].startsWith(`${spec.nest}.`) || !spec.typeorm.test(versions.typeorm))
    throw new Error(`${spec.id}: the README block installed ${JSON.stringify(versions)}`);

  // the shipped declarations, checked as strictly as a consumer can (other packages' .d.ts are not ours to judge)
  const tsc = join(dir, 'node_modules/typescript/bin/tsc');
  const check = await run(
    process.execPath,
    [tsc, '-p', 'tsconfig.json', '--noEmit', '--skipLibCheck', 'false'],
    {
      cwd: dir,
      capture: true,
      allowFailure: true,
    },
  );
  const ours = check.out.split('\n').filter((l) => /^(src\/|node_modules\/nestjs-thorn\/)/.test(l));
  if (ours.length) throw new Error(`${spec.id}: type errors in the app or the package:\n${ours.join('\n')}`);

  const env = {
    ...process.env,
    NODE_OPTIONS: '',
    THORN_COMPAT_DB: spec.driver === 'SQLite' ? 'sqlite' : pgUrl,
  };
  if (template.jest) {
    await run('npm', ['test'], { cwd: dir, env });
  } else {
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir });
    const { out } = await run(process.execPath, ['dist/main.js'], { cwd: dir, env, capture: true });
    process.stdout.write(out);
  }
  console.log(`== app ${spec.id} passed (${secs(t)})`);
}

rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
try {
  if (want('apps') || APPS.some((a) => want(a.id))) {
    const tarball = await pack();
    const blocks = readmeBlocks();
    const pg = await startPostgres();
    try {
      for (const spec of APPS) if (want('apps') || want(spec.id)) await app(spec, tarball, blocks, pg.url);
    } finally {
      await pg.stop();
    }
  }
  if (want('suite')) await suite();
  console.log(`\ncompat: all passed in ${secs(started)}`);
} catch (err) {
  console.error(`\ncompat FAILED after ${secs(started)}: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
}
