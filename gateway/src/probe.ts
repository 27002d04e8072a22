import type { Dispatcher } from 'undici';
import type { KeyPool } from './pool';
import { probeRequest } from '../../contracts/provider-api';

/**
 * Asks the provider whether each disabled key works again (a cheap authenticated GET, such as
 * /v1/models) and re-enables the keys it accepts. A key the operator replaced is re-enabled by the
 * reload instead; this covers a key the provider refused for a while (an expired billing plan, a
 * revoked-then-restored key). Never throws; never logs a key.
 */
export async function probeDisabledKeys(
  pool: KeyPool,
  options: { readonly dispatcher: Dispatcher; readonly timeoutMs: number },
): Promise<void> {
  await Promise.all(
    pool.disabledKeys().map(async (key) => {
      const target = probeRequest(key.provider, key.config, key.key);
      try {
        const response = await options.dispatcher.request({
          origin: target.origin,
          path: target.path,
          method: 'GET',
          headers: target.headers,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        });
        await response.body.dump();
        if (response.statusCode >= 200 && response.statusCode < 300) {
          pool.enable(key.provider, key.keyId, key.key, 'probe passed');
        }
      } catch {
        // unreachable: the key stays disabled until the next probe
      }
    }),
  );
}
