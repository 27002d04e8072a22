/**
 * What the operator CLI asks of the cluster responder, the in-VPC function that reaches the private
 * Kubernetes API of an EKS deployment as the `dify-responders` group (lambda/cluster-responder), and
 * what it answers. The set is closed: each request is one incident step, on Dify's own namespaces and
 * Deployments only, validated here before anything reaches the cluster.
 */
import { z } from 'zod';
import { NAMESPACES, WORKLOAD_IDS, type WorkloadId } from './kubernetes';

const workload = z.enum(WORKLOAD_IDS as [WorkloadId, ...WorkloadId[]]);
const namespace = z.enum(Object.values(NAMESPACES).map((ns) => ns.name) as [string, ...string[]]);
/** A pod's name: a DNS subdomain (RFC 1123), as Kubernetes requires. */
const podName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a pod name (lowercase RFC 1123)');

export const ResponderRequest = z.discriminatedUnion('action', [
  /** Scale every Dify Deployment to zero, remembering its replicas on it; `undo` restores them. */
  z.object({ action: z.literal('lockdown'), undo: z.boolean() }).strict(),
  /** Roll the Deployments' pods, as `kubectl rollout restart` does, stamped with `at`. */
  z.object({ action: z.literal('restart'), workloads: z.array(workload).min(1), at: z.iso.datetime() }).strict(),
  /** Each Deployment's rollout progress. */
  z.object({ action: z.literal('rollout'), workloads: z.array(workload).min(1) }).strict(),
  /**
   * Label pods into (or, with `release`, out of) quarantine: one pod, every pod of one service, or
   * every pod of one namespace.
   */
  z
    .object({
      action: z.literal('quarantine'),
      target: z.union([
        z.object({ namespace, pod: podName }).strict(),
        z.object({ workload }).strict(),
        z.object({ namespace }).strict(),
      ]),
      release: z.boolean(),
    })
    .strict(),
  /** Delete every Dify console refresh token from Valkey. */
  z.object({ action: z.literal('revoke-sessions') }).strict(),
  /** What doctor checks inside the cluster: namespace labels, NetworkPolicies, admission policies. */
  z.object({ action: z.literal('inspect') }).strict(),
]);
export type ResponderRequest = z.infer<typeof ResponderRequest>;

/** One Deployment after lockdown or its undo. */
export interface LockdownRow {
  readonly workload: WorkloadId;
  readonly replicas: number;
  readonly result: string;
}

/** One Deployment's rollout, as `kubectl rollout status` judges it. */
export interface RolloutRow {
  readonly workload: WorkloadId;
  readonly desired: number;
  readonly updated: number;
  readonly available: number;
  readonly done: boolean;
}

export interface QuarantineRow {
  readonly namespace: string;
  readonly pod: string;
  readonly result: string;
}

export interface ClusterPosture {
  readonly namespaces: ReadonlyArray<{ readonly name: string; readonly labels: Readonly<Record<string, string>> }>;
  /** NetworkPolicy names, by namespace. */
  readonly networkPolicies: Readonly<Record<string, readonly string[]>>;
  readonly admissionPolicies: readonly string[];
  readonly admissionBindings: readonly string[];
}

export interface ResponderResults {
  lockdown: { readonly rows: readonly LockdownRow[] };
  restart: { readonly restarted: readonly WorkloadId[] };
  rollout: { readonly rows: readonly RolloutRow[] };
  quarantine: { readonly rows: readonly QuarantineRow[] };
  'revoke-sessions': { readonly deleted: number };
  inspect: ClusterPosture;
}

/** The function's answer: a result, or an error that says what went wrong (never a secret value). */
export type ResponderResponse<A extends ResponderRequest['action'] = ResponderRequest['action']> =
  { readonly ok: true; readonly result: ResponderResults[A] } | { readonly ok: false; readonly error: string };
