/**
 * Applying the light, dark or system theme. The choice is cached in
 * localStorage so app.html can apply it before the first paint.
 */
import type { Theme } from "$lib/api/types";

const CACHE_KEY = "daedalus.theme";

export function applyTheme(theme: Theme): void {
  document.documentElement.dataset.theme = theme;
  try {
    localStorage.setItem(CACHE_KEY, theme);
  } catch {
    // Private browsing may refuse storage; the server still keeps the choice.
  }
}
