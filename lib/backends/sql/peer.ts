import { UnsupportedStoreError } from "../../errors.js";

/**
 * The SQL engines' client packages are optional peers: a user who never opens `sqlite:` or
 * `postgres://` installs nothing native. They are imported on first use; a missing one is a
 * typed error naming the package to install.
 */
export async function loadPeer<T>(
  name: string,
  scheme: string,
  importer: () => Promise<{ default?: T } & T>,
): Promise<T> {
  try {
    const module = await importer();
    return (module.default ?? module) as T;
  } catch (error) {
    throw new UnsupportedStoreError(
      `${scheme} URLs need the optional package "${name}", which could not be loaded: run \`npm install ${name}\``,
      { cause: error },
    );
  }
}
