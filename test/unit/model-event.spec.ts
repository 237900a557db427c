import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import type { QueryRunner } from 'typeorm';
import { getModelEvents, ModelEvent, modelReverser, Q, WebhookModel } from '../../lib/index.js';
import { readModelEvents, readWebhookModel } from '../../lib/events/decorators.js';
import { modelMessage, refOf, senderOf } from '../../lib/events/model-event.js';
import { compileNameTemplate } from '../../lib/events/name-template.js';
import { absoluteRef } from '../../lib/events/reverse.js';
import { selectForDelete } from '../../lib/typeorm/junction-delete.capture.js';
import { TransactionFrames } from '../../lib/typeorm/transaction-frames.js';

describe('@WebhookModel / @ModelEvent', () => {
  @WebhookModel({ senderField: 'owner', reverse: modelReverser('/things/:id', { id: 'id' }) })
  @ModelEvent('thing.created', { on: 'create', timeout: 500 })
  @ModelEvent('thing.changed', { on: 'change', filter: { state__now_eq: 'ON' } })
  @ModelEvent('thing.tagged', { on: 'm2m_add', relation: 'tags' })
  @ModelEvent('thing.poked')
  class Thing {}

  @ModelEvent('special.created', { on: 'create' })
  class SpecialThing extends Thing {}

  it('keeps declaration order and compiles options; Event options are separated from model options', () => {
    const defs = readModelEvents(Thing);
    expect(defs.map((d) => [d.name, d.on, d.relation])).toEqual([
      ['thing.created', 'create', undefined],
      ['thing.changed', 'change', undefined],
      ['thing.tagged', 'm2m_add', 'tags'],
      ['thing.poked', undefined, undefined],
    ]);
    expect(defs[0].eventOptions).toEqual({ timeout: 500 });
    expect(defs[1].filter!.matches({ state: 'ON' }, { state: 'OFF' })).toBe(true);
    expect(defs[1].filter!.matches({ state: 'ON' }, { state: 'ON' })).toBe(false);
    expect(defs.every((d) => d.softRemove)).toBe(true);
    expect(readWebhookModel(Thing)!.senderField).toBe('owner');
  });

  it('a subclass adds its events after its parent’s without changing the parent', () => {
    expect(readModelEvents(SpecialThing).map((d) => d.name)).toEqual([
      'thing.created',
      'thing.changed',
      'thing.tagged',
      'thing.poked',
      'special.created',
    ]);
    expect(readModelEvents(Thing)).toHaveLength(4);
    expect(Object.keys(getModelEvents(SpecialThing))).toHaveLength(5);
  });

  it('rejects bad declarations when the class is decorated, saying what to write', () => {
    expect(() => ModelEvent('x.y', { on: 'created' as any })).toThrow(
      /unknown "on" value "created"; use one of create/,
    );
    expect(() => ModelEvent('x.y', { on: 'm2m_add' })).toThrow(/needs the many-to-many relation/);
    expect(() => ModelEvent('x.y', { on: 'create', relation: 'tags' })).toThrow(/"relation" only applies/);
    expect(() => ModelEvent('x.y', { filter: { state: 'ON' } })).toThrow(/use "state__eq"/);
    expect(() => ModelEvent('x.y', { reverse: '/a' as any })).toThrow(/"reverse" must be a function/);
    expect(() => ModelEvent('x.{}', {})).toThrow(/names no property/);
    expect(() => ModelEvent('', {})).toThrow(/non-empty string/);
    expect(() => ModelEvent('x.y', { softRemove: 'no' as any })).toThrow(
      /"softRemove" must be true or false/,
    );
    expect(() => WebhookModel({ senderField: '' })).toThrow(/senderField/);
  });
});

describe('name templates', () => {
  it('expands {path} and Thorn’s {.path}, dotted paths included', () => {
    const u = { username: 'alice', team: { slug: 'red' } };
    expect(compileNameTemplate('user.{username}').render(u)).toBe('user.alice');
    expect(compileNameTemplate('user.{.username}').render(u)).toBe('user.alice');
    expect(compileNameTemplate('{.team.slug}.{username}.joined').render(u)).toBe('red.alice.joined');
    expect(compileNameTemplate('{.team.slug}.x').paths).toEqual(['team.slug']);
    expect(compileNameTemplate('plain.name').render(u)).toBe('plain.name');
  });

  it('throws on a missing value or an unbalanced brace', () => {
    expect(() => compileNameTemplate('user.{username}').render({})).toThrow(/"username" is undefined/);
    expect(() => compileNameTemplate('user.{username')).toThrow(/unbalanced/);
  });
});

describe('refs and senders', () => {
  it('modelReverser fills :params from dotted paths, URL-encoded', () => {
    const reverse = modelReverser('/c/:name/a/:id', { name: 'category.name', id: 'id' });
    expect(reverse({ id: 7, category: { name: 'a b/c' } })).toBe('/c/a%20b%2Fc/a/7');
    expect(reverse.paths).toEqual(['category.name', 'id']);
    expect(() => reverse({ id: 7 })).toThrow(/"category.name" is undefined/);
    expect(() => modelReverser('/a/:id', {})).toThrow(/no instance path for ":id"/);
    expect(() => modelReverser('/a', { id: 'id' })).toThrow(/has no ":id"/);
    // a port is not a placeholder
    expect(modelReverser('http://h:8080/a/:id', { id: 'id' })({ id: 1 })).toBe('http://h:8080/a/1');
  });

  it('ref: event reverse, else model reverse, else getAbsoluteUrl(), else null; baseUrl for relative ones', () => {
    const [own, inherited] = [
      { reverse: () => '/own', template: compileNameTemplate('a') },
      { template: compileNameTemplate('a') },
    ] as any[];
    const model = { reverse: () => 'model', relations: [] } as any;
    const inst = { getAbsoluteUrl: () => '/abs' };
    expect(refOf(inst, own, model, 'https://x.test/api/')).toBe('https://x.test/api/own');
    expect(refOf(inst, inherited, model, 'https://x.test/api')).toBe('https://x.test/api/model');
    expect(refOf(inst, inherited, undefined)).toBe('/abs');
    expect(refOf({}, inherited, undefined, 'https://x.test')).toBeNull();
    expect(absoluteRef('https://other.test/x', 'https://x.test')).toBe('https://other.test/x');
  });

  it('sender: an object gives its id, a primitive itself, nothing gives null', () => {
    expect(senderOf({ a: { user: { id: 5 } } }, 'a.user')).toBe(5);
    expect(senderOf({ ownerId: 'u1' }, 'ownerId')).toBe('u1');
    expect(senderOf({ a: null }, 'a.user')).toBeNull();
    expect(senderOf({ a: {} }, undefined)).toBeNull();
  });

  it('message: { event, ref, sender, data } plus requestData, JSON-safe', () => {
    expect(
      modelMessage('e', null, 10n, { at: new Date('2026-01-01T00:00:00Z') }, { v: 2, event: 'ignored' }),
    ).toEqual({ event: 'e', ref: null, sender: '10', data: { at: '2026-01-01T00:00:00.000Z' }, v: 2 });
    expect(() => modelMessage('e', null, null, { f: () => 1 })).toThrow(/data\.f/);
  });

  it('Q filters on the same instance and previous version', () => {
    const q = Q({ state__now_eq: 'PUBLISHED' });
    expect(q.matches({ state: 'PUBLISHED' }, undefined)).toBe(true);
    expect(q.matches({ state: 'PUBLISHED' }, { state: 'PUBLISHED' })).toBe(false);
  });
});

describe('TransactionFrames', () => {
  const runner = () =>
    ({ isTransactionActive: false, transactionDepth: 0 }) as unknown as QueryRunner & {
      transactionDepth: number;
    };
  const start = (f: TransactionFrames<string>, qr: any) => {
    qr.isTransactionActive = true;
    qr.transactionDepth++;
    f.started(qr);
  };
  const hold = (f: TransactionFrames<string>, qr: any, ...items: string[]) => (f.reserve(qr).items = items);
  const commit = (f: TransactionFrames<string>, qr: any) => {
    qr.transactionDepth--;
    if (!qr.transactionDepth) qr.isTransactionActive = false;
    return f.committed(qr);
  };
  const rollback = (f: TransactionFrames<string>, qr: any) => {
    qr.transactionDepth--;
    if (!qr.transactionDepth) qr.isTransactionActive = false;
    f.rolledBack(qr);
  };

  it('hands everything over at the outermost commit, in order; a savepoint rollback drops its own frame only', () => {
    const f = new TransactionFrames<string>();
    const qr = runner();
    expect(f.isHolding(qr)).toBe(false);
    start(f, qr);
    hold(f, qr, 'a');
    start(f, qr); // savepoint
    hold(f, qr, 'b');
    start(f, qr); // nested savepoint, rolled back
    hold(f, qr, 'c');
    rollback(f, qr);
    hold(f, qr, 'd');
    expect(commit(f, qr)).toBeUndefined(); // savepoint released: merged, nothing sent yet
    const slot = f.reserve(qr); // reserved now, filled later: keeps its place
    hold(f, qr, 'f');
    slot.items = ['e'];
    expect(commit(f, qr)).toEqual(['a', 'b', 'd', 'e', 'f']);
    expect(f.isHolding(qr)).toBe(false);
    expect(commit(f, qr)).toBeUndefined();
  });

  it('drops everything on an outermost rollback, and keeps runners apart', () => {
    const f = new TransactionFrames<string>();
    const [one, two] = [runner(), runner()];
    start(f, one);
    start(f, two);
    hold(f, one, 'x');
    hold(f, two, 'y');
    rollback(f, one);
    expect(commit(f, two)).toEqual(['y']);
    start(f, one);
    expect(commit(f, one)).toEqual([]);
  });
});

describe('selectForDelete', () => {
  it('turns a junction DELETE into a SELECT of the same rows, for that table only', () => {
    expect(
      selectForDelete(
        'DELETE FROM "article_tags_tag" WHERE ("articleId" = $1 AND "tagId" = $2)',
        'article_tags_tag',
      ),
    ).toBe('SELECT * FROM "article_tags_tag" WHERE ("articleId" = $1 AND "tagId" = $2)');
    expect(
      selectForDelete('DELETE FROM "s"."article_tags_tag" WHERE (a = 1) OR (a = 2)', 'article_tags_tag'),
    ).toBe('SELECT * FROM "s"."article_tags_tag" WHERE (a = 1) OR (a = 2)');
    expect(selectForDelete('DELETE FROM "other" WHERE a = 1', 'article_tags_tag')).toBeUndefined();
    expect(
      selectForDelete('DELETE FROM "article_tags_tag" WHERE a = 1 RETURNING *', 'article_tags_tag'),
    ).toBeUndefined();
    expect(selectForDelete('UPDATE "article_tags_tag" SET a = 1', 'article_tags_tag')).toBeUndefined();
  });
});
