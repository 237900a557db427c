import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { ThornHealthIndicator } from 'nestjs-thorn';

/** `GET /health`: 200 when the database and nestjs-thorn (its store, and the queue with bull) are up, else 503. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly thorn: ThornHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.db.pingCheck('database'), () => this.thorn.isHealthy('thorn')]);
  }
}
