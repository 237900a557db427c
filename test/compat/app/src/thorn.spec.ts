// Runs under the app's own test set-up (for NestJS 11 apps: the jest config `nest new` writes, CommonJS + ts-jest).
import { runScenario } from './scenario';

describe('nestjs-thorn in this app', () => {
  it('delivers model events and a module-scope Event, signed', async () => {
    const events = await runScenario(process.env.THORN_COMPAT_DB ?? 'sqlite');
    expect(events).toEqual(['article.created', 'article.tag_added', 'article.tag_removed', 'greeting.sent']);
  }, 60_000);
});
