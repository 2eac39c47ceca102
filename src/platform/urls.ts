/** `http://host:8081/` → `http://host:8081`: a base URL or URI without its trailing slashes. */
export const trimSlash = (url: string): string => url.replace(/\/+$/, '');
