/**
 * The Valkey key prefixes of Dify's console refresh tokens (api/services/account_service.py):
 * `refresh_token:<token>` and `account_refresh_token:<account>`. With them gone no console session
 * can be renewed.
 */
export const REFRESH_TOKEN_PREFIXES = ['refresh_token:', 'account_refresh_token:'] as const;
