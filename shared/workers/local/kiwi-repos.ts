/**
 * The repositories of a kiwi description, and whether they answer: a create job waits for its
 * http(s) repositories before it builds, as the original's wait-for-repos does, so that a
 * repository still coming up is not a failed build. The probe is a HEAD of the repository's
 * index: `repodata/repomd.xml` for rpm-md (what the original asks), `dists/<suite>/Release`
 * for apt-deb. Only the attributes the wait needs are read, so a small scanner does instead of
 * an XML library.
 */
export interface KiwiRepository {
  type: string;
  path: string;
  distribution?: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_][\w.-]*)\s*=\s*("([^"]*)"|'([^']*)')/g)) {
    out[m[1]] = (m[3] ?? m[4]).replace(/&(amp|lt|gt|quot|apos);/g, (_e, name: string) => ENTITIES[name]);
  }
  return out;
}

export function kiwiRepositories(configXml: string): KiwiRepository[] {
  const xml = configXml.replace(/<!--[\s\S]*?-->/g, '');
  const repos: KiwiRepository[] = [];
  for (const m of xml.matchAll(/<repository\b([^>]*)>([\s\S]*?)<\/repository>/g)) {
    const repo = attributes(m[1]);
    const source = /<source\b([^>]*)\/?>/.exec(m[2]);
    const path = source ? attributes(source[1]).path : undefined;
    if (!path) continue;
    repos.push({ type: repo.type ?? 'rpm-md', path, ...(repo.distribution ? { distribution: repo.distribution } : {}) });
  }
  return repos;
}

export function isHttp(repo: KiwiRepository): boolean {
  return /^https?:\/\//i.test(repo.path);
}

/** The URL whose answer shows that the repository is being served. */
export function probeUrl(repo: KiwiRepository): string {
  const base = repo.path.replace(/\/+$/, '');
  if (repo.type === 'apt-deb') return repo.distribution ? `${base}/dists/${repo.distribution}/Release` : `${base}/Release`;
  return `${base}/repodata/repomd.xml`;
}

/** The repositories whose probe did not answer with a success (within `timeoutMs` each). */
export async function unansweredRepositories(repos: KiwiRepository[], timeoutMs: number): Promise<string[]> {
  const results = await Promise.all(
    repos.map(async (repo) => {
      const url = probeUrl(repo);
      try {
        const res = await fetch(url, { method: 'HEAD', redirect: 'follow', signal: AbortSignal.timeout(timeoutMs) });
        return res.status < 400 ? undefined : `${url} (HTTP ${res.status})`;
      } catch (error) {
        return `${url} (${(error as Error).message})`;
      }
    }),
  );
  return results.filter((r): r is string => r !== undefined);
}
