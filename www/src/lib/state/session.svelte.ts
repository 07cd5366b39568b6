/**
 * Who is signed in and their preferences, shared by every screen.
 */
import { api } from "$lib/api/client";
import { describe } from "$lib/api/errors";
import type { Me, Preferences } from "$lib/api/types";
import { applyTheme } from "$lib/theme";

class Session {
  me = $state<Me | null>(null);
  /** A problem loading the session itself, such as being signed out. */
  error = $state<string | null>(null);

  async load(): Promise<void> {
    try {
      this.me = await api.me();
      this.error = null;
      applyTheme(this.me.preferences.theme);
    } catch (error) {
      this.error = describe(error);
    }
  }

  /** Saves preferences; shows the change at once and undoes it if saving fails. */
  async savePreferences(changes: Partial<Preferences>): Promise<void> {
    if (!this.me) return;
    const before = this.me.preferences;
    const after = { ...before, ...changes };
    this.me.preferences = after;
    applyTheme(after.theme);
    try {
      await api.savePreferences(after);
    } catch (error) {
      this.me.preferences = before;
      applyTheme(before.theme);
      throw error;
    }
  }
}

export const session = new Session();
