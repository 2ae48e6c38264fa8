/*
 * eddy.h — the public interface of libeddy.
 *
 * eddy is a stream-processing engine in the mould of Kafka Streams: it runs a
 * declared topology of windowed aggregations over Kafka topics, keeps the results
 * in RocksDB stores backed by changelog topics and serves them over HTTP. This
 * header is what an application embedding the library needs; everything else is
 * internal to its module folder.
 *
 * Conventions: functions that can fail return an eddy_err_t (EDDY_OK = 0) and
 * fill a caller-supplied `errstr` buffer with a message a user can act on.
 * Constructors return NULL on failure. `_destroy(NULL)` is always a no-op.
 */
#ifndef EDDY_H
#define EDDY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every fallible call. 0 is success; the rest say what kind of failure. */
typedef enum eddy_err_e {
    EDDY_OK = 0,           /**< success */
    EDDY_ERR_INVALID = 1,  /**< bad argument, config or file content */
    EDDY_ERR_IO = 2,       /**< file system or network failure */
    EDDY_ERR_KAFKA = 3,    /**< librdkafka reported an error */
    EDDY_ERR_STORE = 4,    /**< RocksDB reported an error */
    EDDY_ERR_NOMEM = 5,    /**< allocation failed */
    EDDY_ERR_TIMEOUT = 6,  /**< an operation did not finish in time */
    EDDY_ERR_NOTFOUND = 7, /**< a named thing (topic, store, key) does not exist */
    EDDY_ERR_STATE = 8,    /**< call not valid in the object's current state */
} eddy_err_t;

/** Short, static name of an error code ("invalid argument", ...). */
const char *eddy_err_str(eddy_err_t err);

/** The library version, "MAJOR.MINOR.PATCH". */
const char *eddy_version(void);

#ifdef __cplusplus
}
#endif

#endif /* EDDY_H */
