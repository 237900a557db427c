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

/** A delivery as the delivery-log routes return it (`DeliveryJson`). */
export class HooksDelivery {
  id!: string;
  event!: string;
  event_id!: string;
  status!: string;
  attempts!: number;
  response_status!: number | null;
  error!: string | null;
  next_attempt_at!: string | null;
  created_at!: string;
  updated_at!: string;
  delivery!: string;
}

/** One attempt in `attempt_log`. */
export class HooksAttempt {
  number!: number;
  started_at!: string;
  duration_ms!: number;
  response_status!: number | null;
  error!: string | null;
  response_body!: string | null;
}

/** `GET /hooks/:id/deliveries/:deliveryId` (`DeliveryDetailJson`). */
export class HooksDeliveryDetail extends HooksDelivery {
  attempt_log!: HooksAttempt[];
  payload!: string | null;
}

/** The answer of `POST /hooks/:id/recover`. */
export class HooksRecovery {
  redelivering!: number;
}
