// One bull worker process for the pipeline scenario: the built package (by name), `worker: true`, K static signed
// subscribers, no database. Config in THORN_BENCH_WORKER (JSON): { redisUrl, prefix, receiverUrl, k, concurrency,
// chunkSize, maxRunMs }. Prints "ready"; SIGTERM closes it gracefully; it stops itself after maxRunMs.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ThornModule, blockInternalIps, ensureProtocol } from 'nestjs-thorn';

const cfg = JSON.parse(process.env.THORN_BENCH_WORKER ?? '{}');
const subscribers = Array.from({ length: cfg.k }, (_, i) => ({
  url: `${cfg.receiverUrl}/s${i}`,
  hmacSecret: `secret-${i}`,
}));
class WorkerApp {}
Module({
  imports: [
    ThornModule.forRoot({
      dispatcher: 'bull',
      bull: { url: cfg.redisUrl, prefix: cfg.prefix },
      worker: true,
      concurrency: cfg.concurrency,
      chunkSize: cfg.chunkSize,
      retry: false,
      subscribers: { 'bench.*': subscribers },
      recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http')],
      subscriberEntity: false,
      controller: false,
    }),
  ],
})(WorkerApp);
const app = await NestFactory.createApplicationContext(WorkerApp, { logger: ['error', 'warn'] });
app.enableShutdownHooks();
setTimeout(() => process.kill(process.pid, 'SIGTERM'), cfg.maxRunMs ?? 300_000).unref();
console.log('ready');
