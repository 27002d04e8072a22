import type { ServerResponse } from 'node:http';
import { type Client, modelAllowed } from './clients';
import { sendJson } from './errors';
import type { KeyPool } from './pool';

/** GET /v1/models: the models this client may use and the gateway serves, in OpenAI's list form. */
export function listModels(pool: KeyPool, client: Client, res: ServerResponse, requestId: string): void {
  const data = pool.models
    .filter((model) => modelAllowed(client, model))
    .map((id) => ({ id, object: 'model', created: 0, owned_by: pool.providerFor(id) }));
  sendJson(res, 200, { object: 'list', data }, requestId);
}
