/** The job report token: good for one job until its expiry, and for nothing a forger can make. */
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { checkReportToken, mintReportToken } from '#shared/domain/job-report-token.js';

const key = randomBytes(32);
const JOB = '5b3c1e1e-8f0a-4a43-9a8e-0c3c5e6b7a11';
const OTHER = '0f6f6d1c-2f4e-4a5b-8c7d-9e0f1a2b3c4d';
const NOW = 1_800_000_000;

describe('job report tokens', () => {
  test('verify for their job until they expire', () => {
    const token = mintReportToken(key, JOB, NOW + 60);
    expect(checkReportToken(key, JOB, token, NOW)).toEqual({ ok: true });
    expect(checkReportToken(key, JOB, token, NOW + 59)).toEqual({ ok: true });
    expect(checkReportToken(key, JOB, token, NOW + 60)).toEqual({ ok: false, status: 401, reason: 'the token has expired' });
  });

  test("another job's token is refused with 403", () => {
    expect(checkReportToken(key, JOB, mintReportToken(key, OTHER, NOW + 60), NOW)).toEqual({ ok: false, status: 403, reason: 'the token is for another job' });
  });

  test('a token of another key, or one whose job or expiry was changed, does not verify', () => {
    const forged = (t: string) => checkReportToken(key, JOB, t, NOW);
    const refused = { ok: false, status: 401, reason: 'the token does not verify' };
    expect(forged(mintReportToken(randomBytes(32), JOB, NOW + 60))).toEqual(refused);
    const [p, v, job, exp, mac] = mintReportToken(key, OTHER, NOW + 60).split('.');
    expect(forged([p, v, Buffer.from(JOB).toString('base64url'), exp, mac].join('.'))).toEqual(refused);
    const own = mintReportToken(key, JOB, NOW - 10).split('.');
    expect(forged([own[0], own[1], own[2], String(NOW + 3600), own[4]].join('.'))).toEqual(refused);
    expect(forged([p, v, job, exp, mac.slice(0, 10)].join('.'))).toEqual(refused);
  });

  test('text that is no token at all is refused', () => {
    for (const text of ['', 'abc', 'ims-report.v1.a.b.c', 'ims-report.v2.YQ.1.YQ', 'eyJhbGciOi.eyJzdWIiOi.sig']) {
      expect(checkReportToken(key, JOB, text, NOW)).toMatchObject({ ok: false, status: 401 });
    }
  });
});
