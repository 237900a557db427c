import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { runDemo } from '../../sample/demo.js';

// The sample's AppModule, booted exactly as `npm run demo` does: every expected event arrives, signature verified.
describe('sample app demo flow', () => {
  it('delivers every article event to a subscriber created through POST /hooks, each signature verified', async () => {
    const lines: string[] = [];
    const ok = await runDemo((l) => lines.push(l));
    const output = lines.join('\n');
    expect(output).not.toMatch(/✗|demo failed/);
    expect(ok).toBe(true);
    for (const event of [
      'article.created',
      'article.changed',
      'article.published',
      'article.tag_added',
      'article.tag_removed',
      'article.tags_cleared',
      'article.removed',
    ]) {
      expect(output).toMatch(
        new RegExp(`✓ ${event.replace('.', '\\.')}\\s+delivery [0-9a-f-]{36}  signature verified`),
      );
    }
    expect(output).toMatch(/ref http:\/\/localhost:\d+\/articles\/[0-9a-f-]{36}/);
  }, 60_000);
});
