// Classes that only describe JSON shapes for OpenAPI (the API returns plain objects): `describeHooksApi` gives them
// their swagger metadata when @nestjs/swagger is present. Never instantiated.

/** A subscription as the `/hooks` routes return it (`SubscriptionJson`). */
export class HooksSubscription {
  id!: string;
  event!: string;
  url!: string;
  content_type!: string;
  user!: string | null;
  hmac_secret!: string;
  hmac_digest!: string;
  active!: boolean;
  disabled_at!: string | null;
  disabled_reason!: string | null;
  consecutive_failures!: number;
  failing_since!: string | null;
  created_at!: string | null;
  updated_at!: string | null;
  subscription!: string;
}

/** The error body of every 4xx answer (Nest's `HttpException` shape). */
export class HooksError {
  statusCode!: number;
  message!: string;
  error?: string;
}
