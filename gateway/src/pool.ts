import { createHash } from 'node:crypto';
import { DEFAULT_COOLDOWN_MS, type Outcome } from './failure';
import type { ProviderConfig, ProviderName, ProviderPool } from '../../contracts/gateway-documents';

export type KeyHealth = 'healthy' | 'cooling' | 'disabled';
export type Strategy = 'weighted-round-robin' | 'least-in-flight';

interface KeyState {
  readonly provider: ProviderName;
  readonly id: string;
  readonly key: string;
  /** SHA-256 of the key value, to notice a replaced value across reloads without comparing keys. */
  readonly fingerprint: string;
  /** The operator's settings, refreshed from each new document version. */
  weight: number;
  enabled: boolean;
  health: KeyHealth;
  /** While cooling: when the key may be used again. */
  until: number;
  /** Consecutive failed attempts; a success resets it. Reported in key-state logs. */
  failures: number;
  inFlight: number;
  /** Smooth weighted round robin's running weight. */
  current: number;
}

/** A key lent to one attempt. `release` must be called once, whatever happens. */
export interface Lease {
  readonly provider: ProviderName;
  readonly keyId: string;
  readonly key: string;
  readonly config: ProviderConfig;
  release(): void;
}

export interface PoolOptions {
  readonly strategy: Strategy;
  readonly now: () => number;
  /** A key changed health: emit a metric and a log line (never the key). */
  readonly onStateChange: (change: { provider: string; keyId: string; health: KeyHealth; reason: string }) => void;
}

const fingerprint = (key: string) => createHash('sha256').update(key).digest('hex');

/**
 * The provider key pool: which keys exist (from the secret), which are usable now, and which one an
 * attempt gets. State is carried across reloads by provider and key id, and starts over when that
 * key's value changes (a replaced key is a new key).
 */
export class KeyPool {
  private keys = new Map<ProviderName, KeyState[]>();
  private providers: ProviderPool['providers'] = {};
  private modelIndex = new Map<string, ProviderName>();

  constructor(private readonly options: PoolOptions) {}

  /**
   * Takes a new document version. A key whose id and value are unchanged keeps its state object
   * (health, cooldown, failures, and the in-flight count that its outstanding leases will release);
   * a new or replaced key starts healthy. In-flight attempts keep the leases they hold.
   */
  load(pool: ProviderPool): void {
    const previous = new Map<string, KeyState>();
    for (const states of this.keys.values()) for (const s of states) previous.set(`${s.provider}/${s.id}`, s);
    const keys = new Map<ProviderName, KeyState[]>();
    const models = new Map<string, ProviderName>();
    for (const [name, config] of Object.entries(pool.providers) as Array<[ProviderName, ProviderConfig]>) {
      for (const model of config.models) if (!models.has(model)) models.set(model, name);
      keys.set(
        name,
        config.keys.map((entry) => {
          const print = fingerprint(entry.key);
          const old = previous.get(`${name}/${entry.id}`);
          if (old !== undefined && old.fingerprint === print) {
            old.weight = entry.weight;
            old.enabled = entry.enabled;
            return old;
          }
          if (old !== undefined && old.health !== 'healthy') {
            this.options.onStateChange({
              provider: name,
              keyId: entry.id,
              health: 'healthy',
              reason: 'value replaced',
            });
          }
          return {
            provider: name,
            id: entry.id,
            key: entry.key,
            fingerprint: print,
            weight: entry.weight,
            enabled: entry.enabled,
            health: 'healthy',
            until: 0,
            failures: 0,
            inFlight: 0,
            current: 0,
          };
        }),
      );
    }
    this.keys = keys;
    this.providers = pool.providers;
    this.modelIndex = models;
  }

  /** The provider serving a model, or undefined for a model no provider lists. */
  providerFor(model: string): ProviderName | undefined {
    return this.modelIndex.get(model);
  }

  get models(): string[] {
    return [...this.modelIndex.keys()];
  }

  /** Lends the next usable key of a provider, skipping `exclude` (keys this request already tried). */
  acquire(provider: ProviderName, exclude: ReadonlySet<string> = new Set()): Lease | undefined {
    const config = this.providers[provider];
    const states = this.keys.get(provider);
    if (config === undefined || states === undefined) return undefined;
    const now = this.options.now();
    for (const s of states) {
      if (s.health === 'cooling' && s.until <= now) this.setHealth(s, 'healthy', 'cooldown over');
    }
    const usable = states.filter((s) => s.enabled && s.health === 'healthy' && !exclude.has(s.id));
    if (usable.length === 0) return undefined;
    const chosen = this.options.strategy === 'least-in-flight' ? leastInFlight(usable) : smoothWeighted(usable);
    chosen.inFlight += 1;
    let released = false;
    return {
      provider,
      keyId: chosen.id,
      key: chosen.key,
      config,
      release: () => {
        if (!released) {
          released = true;
          chosen.inFlight -= 1;
        }
      },
    };
  }

  /** Records what an attempt with a key led to; `reason` says why a key is disabled (a fixed phrase). */
  report(lease: Lease, outcome: Outcome, cooldownUntil?: number, reason?: string): void {
    const state = this.keys.get(lease.provider)?.find((s) => s.id === lease.keyId && s.key === lease.key);
    if (state === undefined) return; // removed or replaced while in flight: the new value owes nothing
    switch (outcome) {
      case 'success':
        state.failures = 0;
        return;
      case 'client':
        return;
      case 'auth':
        state.failures += 1;
        this.setHealth(state, 'disabled', reason ?? 'the provider refused the key');
        return;
      case 'rate_limited':
        state.failures += 1;
        state.until = cooldownUntil ?? this.options.now() + DEFAULT_COOLDOWN_MS;
        this.setHealth(state, 'cooling', 'rate limited (429)');
        return;
      default:
        state.failures += 1;
    }
  }

  /** Re-enables a disabled key whose probe passed (unless its value was replaced meanwhile). */
  enable(provider: ProviderName, keyId: string, key: string, reason: string): void {
    const state = this.keys.get(provider)?.find((s) => s.id === keyId && s.key === key);
    if (state !== undefined && state.health === 'disabled') {
      state.failures = 0;
      this.setHealth(state, 'healthy', reason);
    }
  }

  /** Disabled keys the operator has not switched off, for the periodic probe. */
  disabledKeys(): Array<{ provider: ProviderName; keyId: string; key: string; config: ProviderConfig }> {
    return [...this.keys.values()]
      .flat()
      .filter((s) => s.health === 'disabled' && s.enabled)
      .map((s) => ({ provider: s.provider, keyId: s.id, key: s.key, config: this.providers[s.provider]! }));
  }

  /** When the provider's earliest cooling key returns, or undefined if none is cooling. */
  nextAvailable(provider: ProviderName): number | undefined {
    const cooling = (this.keys.get(provider) ?? []).filter((s) => s.enabled && s.health === 'cooling');
    return cooling.length === 0 ? undefined : Math.min(...cooling.map((s) => s.until));
  }

  /** Ids and state per provider, never a key: for logs and tests. */
  snapshot(): Record<string, Array<{ id: string; health: KeyHealth; failures: number; inFlight: number }>> {
    return Object.fromEntries(
      [...this.keys].map(([provider, states]) => [
        provider,
        states.map((s) => ({ id: s.id, health: s.health, failures: s.failures, inFlight: s.inFlight })),
      ]),
    );
  }

  private setHealth(state: KeyState, health: KeyHealth, reason: string): void {
    if (state.health === health) return;
    state.health = health;
    if (health === 'healthy') state.until = 0;
    this.options.onStateChange({ provider: state.provider, keyId: state.id, health, reason });
  }
}

/** Nginx's smooth weighted round robin: even spreading, proportional to weight. */
function smoothWeighted(states: KeyState[]): KeyState {
  const total = states.reduce((sum, s) => sum + s.weight, 0);
  let best = states[0];
  for (const s of states) {
    s.current += s.weight;
    if (s.current > best.current) best = s;
  }
  best.current -= total;
  return best;
}

/** Fewest requests in flight relative to weight; ties go to smooth weighted round robin. */
function leastInFlight(states: KeyState[]): KeyState {
  const load = (s: KeyState) => s.inFlight / s.weight;
  const lowest = Math.min(...states.map(load));
  return smoothWeighted(states.filter((s) => load(s) === lowest));
}
