// Test support: Debian's chromium, headless, driven by playwright-core, to
// open the HTML reports the way a user would (file:// URLs, no network).
// .ci/run installs chromium; where it is missing the browser tests fail
// loudly, unless BALLOON_SIM_SKIP_BROWSER=1 says to skip them (locally only).

import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = process.env.BALLOON_SIM_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags: headless, no sandbox (CI containers run as root), no GPU, and no
 * background traffic: without the networking flags chromium's own
 * connections (component updates, sync) are refused by a closed network and
 * show up as errors.
 */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Why the browser tests cannot run here, or null. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium; .ci/run does) or point BALLOON_SIM_CHROMIUM at it`;
}

/** One browser with a fresh profile directory (a persistent context: playwright takes the profile as a parameter, not a flag). */
export async function launchBrowser(): Promise<BrowserContext> {
  const profile = mkdtempSync(path.join(tmpdir(), 'balloon-sim-chromium-'));
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 1280, height: 1000 } });
}
