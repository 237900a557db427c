// `bull`/`@nestjs/bull` and `bullmq`/`@nestjs/bullmq`/`ioredis` are optional peers: the package root never loads them,
// and a missing one gives a clear error only when `dispatcher: 'bull'` / `'bullmq'` is used. Checks the BUILT package
// (npm test builds dist/ first).
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const dist = resolve('dist');
// bull, bullmq, @nestjs/bull, @nestjs/bullmq, @nestjs/bull-shared, and ioredis (what BullMQ connects with)
const QUEUE_PACKAGES = /^(bull|bullmq|ioredis|@nestjs\/bull|@nestjs\/bullmq|@nestjs\/bull-shared)(\/|$)/;

/** Specifiers a file loads statically (`import … from`, `export … from`, `import '…'`; and `import('…')` in d.ts). */
function specifiers(file: string, withTypeImports: boolean): string[] {
  let src = readFileSync(file, 'utf8');
  src = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out = [...src.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/g)].map(
    (m) => m[1],
  );
  out.push(...[...src.matchAll(/(?:^|[\s;])import\s*['"]([^'"]+)['"]/g)].map((m) => m[1]));
  if (withTypeImports) out.push(...[...src.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]));
  return out;
}

/** Every file reachable from `entry` through static imports, and every package specifier they use. */
function graph(entry: string, withTypeImports: boolean) {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of specifiers(file, withTypeImports)) {
      if (!spec.startsWith('.')) packages.add(spec);
      else {
        const target = join(dirname(file), withTypeImports ? spec.replace(/\.js$/, '.d.ts') : spec);
        if (existsSync(target)) todo.push(target);
      }
    }
  }
  return { files: [...files].map((f) => f.slice(dist.length + 1)), packages: [...packages] };
}

// The operations peers (SPEC §13): OpenTelemetry, terminus and swagger are loaded only on use, never from the root.
const OPS = /^(@opentelemetry\/|@nestjs\/terminus(\/|$)|@nestjs\/swagger(\/|$))/;

describe('@opentelemetry/*, @nestjs/terminus and @nestjs/swagger are optional peers', () => {
  it('dist/index.js and dist/index.d.ts never load or reference them, directly or transitively', () => {
    const js = graph(join(dist, 'index.js'), false);
    expect(js.files).toEqual(
      expect.arrayContaining([
        'telemetry/telemetry.js',
        'health/thorn.health.js',
        'api/openapi/hooks.openapi.js',
      ]),
    );
    expect(js.packages.filter((p) => OPS.test(p))).toEqual([]);
    const dts = graph(join(dist, 'index.d.ts'), true);
    expect(dts.files).toContain('health/thorn.health.d.ts');
    expect(dts.packages.filter((p) => OPS.test(p))).toEqual([]);
  });

  it('the files that use them load them lazily (so the check above can fail)', () => {
    const src = (f: string) => readFileSync(join(dist, f), 'utf8');
    expect(src('telemetry/telemetry.js')).toMatch(/import\('@opentelemetry\/api'\)/);
    expect(src('health/thorn.health.js')).toMatch(/import\('@nestjs\/terminus'\)/);
    expect(src('api/openapi/hooks.openapi.js')).toMatch(/import\('@nestjs\/swagger'\)/);
  });
});

describe('bull and bullmq are optional peers', () => {
  it('dist/index.js never loads bull, bullmq or their dispatchers, directly or transitively', () => {
    const { files, packages } = graph(join(dist, 'index.js'), false);
    expect(files.length).toBeGreaterThan(20);
    expect(files).toContain('dispatchers/dispatcher.factory.js');
    expect(packages.filter((p) => QUEUE_PACKAGES.test(p))).toEqual([]);
    expect(files.filter((f) => /^dispatchers\/(bull|bullmq|queue)\//.test(f))).toEqual([]);
    // the factory reaches them only through dynamic imports
    const factory = readFileSync(join(dist, 'dispatchers/dispatcher.factory.js'), 'utf8');
    expect(factory).toMatch(/await import\('\.\/bull\/bull\.dispatcher\.js'\)/);
    expect(factory).toMatch(/await import\('\.\/bullmq\/bullmq\.dispatcher\.js'\)/);
  });

  it('dist/index.d.ts never references bull or bullmq types, directly or transitively', () => {
    const { files, packages } = graph(join(dist, 'index.d.ts'), true);
    expect(files).toContain('thorn-options.d.ts');
    expect(packages.filter((p) => QUEUE_PACKAGES.test(p))).toEqual([]);
    // only the dependency-free public types of the queue dispatchers are reachable
    expect(files.filter((f) => /^dispatchers\/(bull|bullmq|queue)\//.test(f)).sort()).toEqual([
      'dispatchers/bull/bull.types.d.ts',
      'dispatchers/bullmq/bullmq.types.d.ts',
      'dispatchers/queue/queue.types.d.ts',
    ]);
  });

  it('each lazily loaded dispatcher is what imports its library, and the shared queue code imports none', () => {
    const bull = graph(join(dist, 'dispatchers/bull/bull.dispatcher.js'), false);
    expect(bull.packages).toContain('bull');
    expect(bull.packages.filter((p) => /^(bullmq|@nestjs\/bullmq)(\/|$)/.test(p))).toEqual([]);
    const bullmq = graph(join(dist, 'dispatchers/bullmq/bullmq.dispatcher.js'), false);
    expect(bullmq.packages).toContain('bullmq');
    expect(bullmq.packages.filter((p) => /^(bull|@nestjs\/bull)(\/|$)/.test(p))).toEqual([]);
    // both share one implementation of the dispatcher; it needs neither library
    for (const g of [bull, bullmq]) expect(g.files).toContain('dispatchers/queue/queue.dispatcher.js');
    const shared = graph(join(dist, 'dispatchers/queue/queue.dispatcher.js'), false);
    expect(shared.packages.filter((p) => QUEUE_PACKAGES.test(p))).toEqual([]);
  });

  it('works without bull or bullmq installed unless a queue dispatcher is used, which then fails with a clear message', () => {
    const out = execFileSync(process.execPath, ['test/fixtures/queue-missing.mjs'], {
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result.direct).toBe('ok');
    expect(result.bull).toMatch(/dispatcher: 'bull' needs the optional package "bull".*npm install bull/);
    expect(result.bull).toMatch(/Cannot find package 'bull'/);
    expect(result.bullmq).toMatch(
      /dispatcher: 'bullmq' needs the optional packages "bullmq" and "ioredis".*npm install bullmq ioredis @nestjs\/bullmq/,
    );
    expect(result.bullmq).toMatch(/Cannot find package 'bullmq'/);
  });

  it("with bullmq installed but not ioredis (BullMQ 6 leaves it optional), dispatcher: 'bullmq' fails at start-up saying so", () => {
    const out = execFileSync(process.execPath, ['test/fixtures/queue-missing.mjs', 'ioredis'], {
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result.direct).toBe('ok');
    expect(result.bullmq).toMatch(
      /needs the optional packages "bullmq" and "ioredis".*Cannot find package 'ioredis'/,
    );
  });
});
