import type { Provider } from '@nestjs/common';

/** Providers that hook model events (`@WebhookModel` / `@ModelEvent`) into the app's TypeORM DataSource. */
export const modelEventProviders: Provider[] = [];
