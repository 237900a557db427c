import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { observeQueue } from '../telemetry/telemetry.js';
import type { ThornQueueStats } from './queue/queue.types.js';
import { Dispatcher } from './dispatcher.js';

/**
 * Reports the module dispatcher's queue depth as the observable gauge `thorn.queue.jobs` when it has a queue (bull, bullmq).
 * Registered at bootstrap, so an OpenTelemetry SDK started before the app (as OpenTelemetry requires) receives it.
 */
@Injectable()
export class ThornQueueMetrics implements OnApplicationBootstrap, OnApplicationShutdown {
  private stop?: () => void;

  constructor(@Inject(Dispatcher) private readonly dispatcher: Dispatcher) {}

  onApplicationBootstrap(): void {
    const d = this.dispatcher as Dispatcher & { queueStats?: () => Promise<ThornQueueStats> };
    if (typeof d.queueStats !== 'function') return;
    this.stop = observeQueue(async () => {
      const { waiting, active, delayed, failed } = await d.queueStats!();
      return { waiting, active, delayed, failed };
    });
  }

  onApplicationShutdown(): void {
    this.stop?.();
    this.stop = undefined;
  }
}
