import { Annotations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Every warning synth can show, by id. The README's "Synth warnings" table explains each one, what
 * removes its cause and how to acknowledge it (test/config/config.test.ts holds the table to this
 * list), and `acknowledgeWarnings` accepts exactly these ids.
 */
export const SYNTH_WARNING_IDS = [
  'dify:openIpv4',
  'dify:openIpv6',
  'dify:nobodyAllowed',
  'dify:noAlarmEmail',
  'dify:execEnabled',
  'dify:devProfile',
  'dify:difyVersionUnchecked',
  'dify:image-not-digest-pinned:api',
  'dify:image-not-digest-pinned:web',
  'dify:image-not-digest-pinned:sandbox',
  'dify:image-not-digest-pinned:pluginDaemon',
  'dify:image-not-digest-pinned:ssrfProxy',
] as const;

/** The id of a warning synth can show. */
export type SynthWarningId = (typeof SYNTH_WARNING_IDS)[number];

/** The sentence every synth warning ends with: how to accept it on purpose. */
export function acknowledgeHint(id: SynthWarningId): string {
  return `To accept it on purpose, acknowledge it with -c acknowledgeWarnings=${id} (comma-separate several ids, or list them under "acknowledgeWarnings" in cdk.json's context): an acknowledged warning is not shown and does not fail \`cdk synth --strict\`.`;
}

/**
 * Adds a catalogued warning to `scope`, ending with how to acknowledge it. Every synth warning of
 * the app goes through here, so that each has an id the README explains and `acknowledgeWarnings`
 * accepts.
 */
export function addSynthWarning(scope: IConstruct, id: SynthWarningId, message: string): void {
  Annotations.of(scope).addWarningV2(id, `${message} ${acknowledgeHint(id)}`);
}

/**
 * Acknowledges the listed warnings in each stack: those already added are removed, and any added
 * later under these stacks is not shown. Not written through `Validations.acknowledge()`, because
 * cdk-nag would copy every such acknowledgement into each resource's `Metadata.cdk_nag`.
 */
export function acknowledgeSynthWarnings(stacks: readonly IConstruct[], ids: readonly SynthWarningId[]): void {
  for (const stack of stacks) {
    for (const id of ids) {
      Annotations.of(stack).acknowledgeWarning(id, 'acknowledged on purpose with the acknowledgeWarnings setting');
    }
  }
}
