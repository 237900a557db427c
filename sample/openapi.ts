import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/** The sample's OpenAPI document (the `/hooks` routes come from nestjs-thorn) at `/openapi.json`, Swagger UI at `/docs`. */
export function setupOpenApi(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('nestjs-thorn sample')
    .setDescription('Articles, and webhook subscriptions under /hooks')
    .addBearerAuth() // the `bearer` scheme the /hooks routes require (the sample's tokens)
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, config), {
    jsonDocumentUrl: 'openapi.json',
  });
}
