import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { runDeliveryLogDemo } from '../../sample/delivery-log-demo.js';

// The delivery-log part of `npm run demo`, on the sample's AppModule (ledger on): a failing receiver, the log, a
// redelivery and a recover through the sample's /hooks routes.
describe('sample app delivery-log demo', () => {
  it('shows the failed delivery with its attempts, redelivers it and recovers the later failures', async () => {
    const lines: string[] = [];
    const ok = await runDeliveryLogDemo((l) => lines.push(l));
    const output = lines.join('\n');
    expect(output).not.toMatch(/✗/);
    expect(ok).toBe(true);
    expect(output).toMatch(
      /✓ GET \/hooks\/[0-9a-f]{8}…\/deliveries → failed, 2 attempts, last: .+ answered 503/,
    );
    expect(output).toMatch(/attempt 1 at .+: 503 in \d+ ms, body "receiver down for maintenance"/);
    expect(output).toMatch(
      /✓ POST …\/redeliver → 202; attempt 3 succeeded with the same Hook-Delivery [0-9a-f-]{36}/,
    );
    expect(output).toMatch(/✓ POST \/hooks\/[0-9a-f]{8}…\/recover → 202 \{"redelivering":2\}/);
    expect(output).toMatch(
      /✓ GET …\/deliveries\?limit=2 → 2 rows, Link: <http:\/\/127\.0\.0\.1:\d+\/hooks\/.+>; rel="next"/,
    );
  }, 60_000);
});
