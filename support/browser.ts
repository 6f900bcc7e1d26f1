/** Opens a local HTML file in Debian's headless Chromium (playwright-core) and reports what it shows. */
import { chromium, type Page } from 'playwright-core';
import { pathToFileURL } from 'node:url';

export interface PageCheck {
  readonly consoleErrors: string[];
  readonly failedRequests: string[];
  readonly title: string;
  readonly verdict: string;
  readonly svgCount: number;
  readonly imagesLoaded: number;
  readonly imagesTotal: number;
  readonly screenshot: Buffer;
}

/** `probe`, when given, runs on the loaded page and its answer is returned as `probed`. */
export async function checkPage<T = undefined>(file: string, probe?: (page: Page) => Promise<T>): Promise<PageCheck & { readonly probed: T | undefined }> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const consoleErrors: string[] = [];
    const failedRequests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('requestfailed', (r) => failedRequests.push(r.url()));
    // Any request that leaves the file itself is a failure of self-containment.
    await page.route('**/*', (route) => (route.request().url().startsWith('file:') || route.request().url().startsWith('data:') ? route.continue() : route.abort()));
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    const imgs = await page.$$eval('img', (els) => els.map((e) => (e as unknown as { complete: boolean; naturalWidth: number }).complete && (e as unknown as { naturalWidth: number }).naturalWidth > 0));
    return {
      consoleErrors,
      failedRequests,
      title: await page.title(),
      // An eval report has ROC curves and no verdict: do not wait for one.
      verdict: (await page.locator('.verdict').count()) > 0 ? ((await page.locator('.verdict').first().textContent()) ?? '') : '',
      svgCount: await page.locator('svg.plot').count(),
      imagesLoaded: imgs.filter(Boolean).length,
      imagesTotal: imgs.length,
      screenshot: await page.screenshot({ fullPage: true }),
      probed: probe !== undefined ? await probe(page) : undefined,
    };
  } finally {
    await browser.close();
  }
}
