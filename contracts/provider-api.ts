import type { ProviderConfig, ProviderName } from './gateway-documents';

/** The OpenAI-compatible and Anthropic operations the gateway forwards. */
export type Operation = 'chat/completions' | 'completions' | 'embeddings' | 'messages' | 'messages/count_tokens';

export interface UpstreamRequest {
  readonly url: string;
  /** `url` split for undici's dispatcher (no URL parsing per request). */
  readonly origin: string;
  readonly path: string;
  readonly headers: Record<string, string>;
}

const trim = (url: string) => url.replace(/\/+$/, '');

/** scheme://host[:port] and the rest of a URL, e.g. a custom provider's path prefix and query. */
function split(url: string, headers: Record<string, string>): UpstreamRequest {
  const at = url.indexOf('/', url.indexOf('//') + 2);
  return at < 0
    ? { url, origin: url, path: '/', headers }
    : { url, origin: url.slice(0, at), path: url.slice(at), headers };
}

/** `custom`'s base URL may or may not end in /v1 already; either way the path gets exactly one. */
function withV1(baseUrl: string): string {
  const base = trim(baseUrl);
  return base.endsWith('/v1') ? base : `${base}/v1`;
}

/**
 * Where one attempt goes and how it authenticates. The client's own credentials are never
 * forwarded: only what the client accepts and, for Anthropic, the version and beta headers that
 * policy.ts checked (`anthropic`).
 */
export function upstreamRequest(
  provider: ProviderName,
  config: ProviderConfig,
  key: string,
  operation: Operation,
  model: string,
  accept: string | undefined,
  anthropic: Record<string, string> = {},
): UpstreamRequest {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: accept ?? 'application/json',
    'user-agent': 'dify-llm-gateway',
    // Uncompressed, so the answer passes through byte for byte and its usage can be read on the way.
    'accept-encoding': 'identity',
  };
  switch (provider) {
    case 'openai':
      return split(`${trim(config.baseUrl)}/v1/${operation}`, { ...headers, authorization: `Bearer ${key}` });
    case 'custom':
      return split(`${withV1(config.baseUrl)}/${operation}`, { ...headers, authorization: `Bearer ${key}` });
    case 'azure-openai': {
      const deployment = encodeURIComponent(config.deployments?.[model] ?? model);
      const version = encodeURIComponent(config.apiVersion ?? '2024-10-21');
      return split(`${trim(config.baseUrl)}/openai/deployments/${deployment}/${operation}?api-version=${version}`, {
        ...headers,
        'api-key': key,
      });
    }
    case 'anthropic':
      return split(`${trim(config.baseUrl)}/v1/${operation}`, {
        ...headers,
        'x-api-key': key,
        'anthropic-version': '2023-06-01',
        ...anthropic,
      });
  }
}

/** A cheap authenticated call that tells whether a disabled key works again. */
export function probeRequest(provider: ProviderName, config: ProviderConfig, key: string): UpstreamRequest {
  switch (provider) {
    case 'openai':
      return split(`${trim(config.baseUrl)}/v1/models`, { authorization: `Bearer ${key}` });
    case 'custom':
      return split(`${withV1(config.baseUrl)}/models`, { authorization: `Bearer ${key}` });
    case 'azure-openai':
      return split(
        `${trim(config.baseUrl)}/openai/models?api-version=${encodeURIComponent(config.apiVersion ?? '2024-10-21')}`,
        { 'api-key': key },
      );
    case 'anthropic':
      return split(`${trim(config.baseUrl)}/v1/models`, { 'x-api-key': key, 'anthropic-version': '2023-06-01' });
  }
}

/** Response headers passed back to the client; everything else (cookies, provider internals) stays. */
export const PASSED_RESPONSE_HEADERS = ['content-type', 'cache-control'];
