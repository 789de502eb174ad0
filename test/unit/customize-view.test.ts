/**
 * The node's copy-on-write view of a customize job's image root (customize-view.ts), run here with
 * this host's shell and mount: an image the kernel cannot mount leaves no directory and no mount
 * behind and says why, so the job's container unsquashes it instead; a second run changes nothing.
 * The mounted path itself runs in test/integration/remote-node-jobs.test.ts.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeView, mountViewCommand } from '#shared/workers/remote-node/customize-view.js';
import { jobLayout } from '#shared/workers/remote-node/job-layout.js';
import { remoteNodeSettingsFromEnv } from '#shared/workers/remote-node/settings.js';

const scratch = mkdtempSync(join(tmpdir(), 'ims-view-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the copy-on-write view', () => {
  test('an image that cannot be mounted falls back to a copy, with the reason, and leaves nothing mounted or made', () => {
    const layout = jobLayout(remoteNodeSettingsFromEnv({ REMOTE_NODE_WORK_DIR: scratch }), 'job-1');
    mkdirSync(layout.image, { recursive: true });
    writeFileSync(join(layout.image, 'image.sqsh'), 'not a squashfs');
    execFileSync('sh', ['-c', mountViewCommand(layout)]);
    const view = readFileSync(join(layout.dir, 'view'), 'utf8').trim();
    expect(view).toMatch(/^copy \S/);
    for (const dir of ['image/image-root', 'lower', 'upper', 'work']) expect({ dir, exists: existsSync(join(layout.dir, dir)) }).toEqual({ dir, exists: false });
    expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })).not.toContain(layout.dir);
    expect(describeView(view)).toMatch(/^the image root was unsquashed: the node could not mount it \(.+\)$/);
    // Decided once: a repeat leaves the decision as it is.
    execFileSync('sh', ['-c', mountViewCommand(layout)]);
    expect(readFileSync(join(layout.dir, 'view'), 'utf8').trim()).toBe(view);
    expect(describeView('overlay')).toBe('the image root is mounted copy-on-write (the squashfs read-only under overlayfs)');
  });
});
