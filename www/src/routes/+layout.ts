// A single-page app: everything renders in the browser, from index.html.
export const ssr = false;
export const prerender = false;
