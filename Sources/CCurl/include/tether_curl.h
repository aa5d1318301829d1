#ifndef TETHER_CURL_H
#define TETHER_CURL_H
/* libcurl for tetherd, loaded on first use.

   Only robots that mint fleet tokens (`upstream.token`) need libcurl, yet linking it pulls
   its whole dependency chain (OpenSSL, GnuTLS, Kerberos, LDAP, ...: about 5 MB resident)
   into every tetherd. So nothing links against it: the first call to
   `tether_curl_global_init_default` opens libcurl.so.4 with dlopen and resolves the handful
   of functions below; until then, and on robots without `upstream.token`, none of it is
   mapped. The types and constants come from libcurl's own header.

   The setopt/getinfo wrappers exist because curl_easy_setopt and curl_easy_getinfo are
   variadic, which Swift cannot call; each passes one typed argument. */
#include <curl/curl.h>

/* Load libcurl (once; thread-safe) and run curl_global_init(CURL_GLOBAL_DEFAULT).
   CURLE_FAILED_INIT when the library cannot be loaded: tether_curl_load_error says why. */
CURLcode tether_curl_global_init_default(void);
/* NULL when libcurl is loaded, else the loader's message (dlerror text). */
const char *tether_curl_load_error(void);

/* Each of these requires a successful tether_curl_global_init_default first. */
CURL *tether_curl_easy_init(void);
void tether_curl_easy_cleanup(CURL *h);
CURLcode tether_curl_easy_perform(CURL *h);
const char *tether_curl_easy_strerror(CURLcode code);
struct curl_header *tether_curl_easy_nextheader(CURL *h, unsigned int origin, int request, struct curl_header *prev);
struct curl_slist *tether_curl_slist_append(struct curl_slist *list, const char *string);
void tether_curl_slist_free_all(struct curl_slist *list);

CURLcode tether_curl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode tether_curl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode tether_curl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode tether_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v);
typedef size_t (*tether_curl_write_cb)(char *, size_t, size_t, void *);
CURLcode tether_curl_setopt_write_function(CURL *h, CURLoption o, tether_curl_write_cb v);
typedef int (*tether_curl_xferinfo_cb)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
CURLcode tether_curl_setopt_xferinfo_function(CURL *h, CURLoption o, tether_curl_xferinfo_cb v);
CURLcode tether_curl_setopt_offset(CURL *h, CURLoption o, curl_off_t v);
CURLcode tether_curl_setopt_blob(CURL *h, CURLoption o, struct curl_blob *v);
CURLcode tether_curl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode tether_curl_getinfo_string(CURL *h, CURLINFO i, char **v);

#endif
