import type { EntityMetadata, EntitySubscriberInterface } from 'typeorm';

// Named through APIs both supported TypeORM lines share, so the shipped .d.ts type-check on 0.3 and 1.x alike:
// 0.3 does not export RelationMetadata from its root and makes BeforeQueryEvent generic; 1.x does neither.

/** TypeORM's `RelationMetadata`. */
export type RelationMetadata = NonNullable<ReturnType<EntityMetadata['findRelationWithPropertyPath']>>;

/** The argument of an entity subscriber's `beforeQuery`. */
export type BeforeQueryEvent = Parameters<NonNullable<EntitySubscriberInterface['beforeQuery']>>[0];
