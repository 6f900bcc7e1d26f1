// Screenshots an HTML report in headless Chromium: screenshot.ts <report.html> <out.png>
import { writeFileSync } from 'node:fs';
import { checkPage } from '../../support/browser.js';

const page = await checkPage(process.argv[2]!);
if (page.consoleErrors.length > 0) throw new Error(`console errors: ${page.consoleErrors.join('; ')}`);
writeFileSync(process.argv[3]!, page.screenshot);
console.log(`${page.verdict} (${page.svgCount} plots, ${page.imagesLoaded}/${page.imagesTotal} thumbnails) -> ${process.argv[3]}`);
