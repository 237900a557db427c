import { describe, expect, it } from '@jest/globals';
import { logError, logIds, logLine } from '../../lib/telemetry/log-fields.js';

describe('log fields', () => {
  it('lists the ids present in a fixed order, URLs without credentials, query or fragment', () => {
    expect(
      logIds({
        url: 'https://u:p@hooks.example.com/in?token=t#f',
        subscription: '42',
        delivery: 'd-1',
        event: 'order.paid',
        eventId: 'e-1',
        job: '7',
      }),
    ).toBe(
      'event=order.paid event_id=e-1 delivery=d-1 subscription=42 url=https://hooks.example.com/in job=7',
    );
    expect(logIds({ delivery: 'd', subscription: undefined, event: '' })).toBe('delivery=d');
    expect(logLine('nothing to add', {})).toBe('nothing to add');
  });

  it('quotes values with spaces, quotes or =; lists several ids as the first five and +N (duplicates once)', () => {
    expect(logIds({ event: 'odd name', subscription: 'a=b' })).toBe('event="odd name" subscription="a=b"');
    expect(logIds({ event: ['a.b', 'a.b', 'c.d'], delivery: ['1', '2', '3', '4', '5', '6', '7'] })).toBe(
      'event=a.b,c.d delivery=1,2,3,4,5,+2',
    );
  });

  it('error texts lose URL credentials, queries and fragments', () => {
    expect(logError(new Error('connect to redis://:pw@10.0.0.1:6379/0?x=1 failed'))).toBe(
      'connect to redis://10.0.0.1:6379/0 failed',
    );
    expect(logError('plain')).toBe('plain');
    expect(logError({ message: 'from another realm http://a:b@h/p?q' })).toBe(
      'from another realm http://h/p',
    );
  });
});
