import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { THORN_DATA_SOURCE } from '../thorn.constants.js';
import { ModelEventEmitter } from './model-event.emitter.js';
import { ModelEventSubscriber } from './model-event.subscriber.js';
import { buildModelEventIndex } from './model-events.index.js';
import { ModelEventsMetadataAccessor } from './model-events.metadata-accessor.js';

/**
 * Wires model events into the app's DataSource: indexes the entities that declare `@ModelEvent`s (the DataSource's
 * `entityMetadatas` say which exist) and registers one `ModelEventSubscriber` at start-up, removed at shutdown.
 */
@Injectable()
export class ModelEventsExplorer implements OnModuleInit, OnApplicationShutdown {
  private subscriber?: ModelEventSubscriber;

  constructor(
    @Inject(THORN_DATA_SOURCE) private readonly dataSource: DataSource | null,
    private readonly accessor: ModelEventsMetadataAccessor,
    private readonly emitter: ModelEventEmitter,
  ) {}

  onModuleInit(): void {
    if (!this.dataSource) return;
    const index = buildModelEventIndex(this.dataSource, this.accessor);
    if (!index.models.size) return;
    this.subscriber = new ModelEventSubscriber(index, this.emitter);
    this.dataSource.subscribers.push(this.subscriber);
  }

  onApplicationShutdown(): void {
    if (!this.subscriber || !this.dataSource) return;
    const i = this.dataSource.subscribers.indexOf(this.subscriber);
    if (i >= 0) this.dataSource.subscribers.splice(i, 1);
    this.subscriber = undefined;
  }

  /** The registered subscriber (none when no entity declares model events). */
  get registered(): ModelEventSubscriber | undefined {
    return this.subscriber;
  }
}
