/*
 * kafka_check.c — scripts/kafka's probe of a real Kafka cluster, through librdkafka
 * (the client eddy uses), so "ready" means ready for eddy, not only for Java tools.
 *
 *   kafka_check BOOTSTRAP ready N          N brokers registered and answering metadata
 *   kafka_check BOOTSTRAP txn RF           a transactional produce commits (creates the
 *                                          topic __eddy_kafka_check with RF replicas)
 *   kafka_check BOOTSTRAP group            a consumer group commits an offset there (so
 *                                          the group coordinator and its topic are up
 *                                          before the first real group joins)
 *   kafka_check BOOTSTRAP topic NAME:P ... creates each topic with P partitions if it
 *                                          is missing (broker's default replication);
 *                                          an existing one must have P partitions
 *
 * One try each: exit 0 on success, 1 with one line on stderr saying what failed
 * (scripts/kafka retries until its deadline), 2 on a usage error. Not part of eddy.
 */
#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS   10000
#define CHECK_TOPIC  "__eddy_kafka_check"
#define MAX_TOPICS   64
#define ERRSTR_BYTES 512

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap, const char *txn_id)
{
    char errstr[ERRSTR_BYTES];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const settings[][2] = {
        {"bootstrap.servers", bootstrap},
        {"log_level", "0"}, /* failures are reported by the calls below, once */
        {"socket.timeout.ms", "5000"},
        {"message.timeout.ms", "10000"},
        {"transaction.timeout.ms", "10000"},
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr))) {
            fprintf(stderr, "kafka_check: %s\n", errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (txn_id && rd_kafka_conf_set(conf, "transactional.id", txn_id, errstr, sizeof(errstr))) {
        fprintf(stderr, "kafka_check: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk)
        fprintf(stderr, "kafka_check: %s\n", errstr);
    return rk;
}

/* Partition count of `topic` in `md`, 0 if absent or in error; *leaderless is set
 * when a partition has no leader yet. */
static int partitions_of(const struct rd_kafka_metadata *md, const char *topic, int *leaderless)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) || md->topics[i].err)
            continue;
        for (int p = 0; p < md->topics[i].partition_cnt; p++)
            if (md->topics[i].partitions[p].leader < 0 || md->topics[i].partitions[p].err)
                *leaderless = 1;
        return md->topics[i].partition_cnt;
    }
    return 0;
}

static int check_ready(const char *bootstrap, int want)
{
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    if (!rk)
        return 1;
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, TIMEOUT_MS);
    int rc = 1;
    if (err) {
        fprintf(stderr, "kafka_check: no metadata from %s: %s\n", bootstrap, rd_kafka_err2str(err));
    } else {
        if (md->broker_cnt == want)
            rc = 0;
        else
            fprintf(stderr, "kafka_check: %d of %d brokers registered\n", md->broker_cnt, want);
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* Creates the topics (name, partitions) that are missing; -1 replication means the
 * broker's default.replication.factor. Checks the existing ones' partition counts. */
static int create_topics(rd_kafka_t *rk, char **names, const int *parts, int n, int rf)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, TIMEOUT_MS);
    if (err) {
        fprintf(stderr, "kafka_check: no metadata: %s\n", rd_kafka_err2str(err));
        return 1;
    }
    rd_kafka_NewTopic_t *nts[MAX_TOPICS];
    int n_new = 0, rc = 0, leaderless = 0;
    char errstr[ERRSTR_BYTES];
    for (int t = 0; t < n && !rc; t++) {
        int have = partitions_of(md, names[t], &leaderless);
        if (have && have != parts[t]) {
            fprintf(stderr, "kafka_check: topic %s exists with %d partitions, not %d\n", names[t],
                    have, parts[t]);
            rc = 1;
        } else if (!have) {
            nts[n_new] = rd_kafka_NewTopic_new(names[t], parts[t], rf, errstr, sizeof(errstr));
            if (!nts[n_new]) {
                fprintf(stderr, "kafka_check: topic %s: %s\n", names[t], errstr);
                rc = 1;
            } else {
                n_new++;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    if (!rc && n_new) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts =
            rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_operation_timeout(opts, TIMEOUT_MS, NULL, 0);
        rd_kafka_CreateTopics(rk, nts, (size_t)n_new, opts, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 2000);
        if (!ev || rd_kafka_event_error(ev)) {
            fprintf(stderr, "kafka_check: CreateTopics: %s\n",
                    ev ? rd_kafka_event_error_string(ev) : "no answer");
            rc = 1;
        } else {
            size_t cnt = 0;
            const rd_kafka_topic_result_t **res =
                rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
            for (size_t i = 0; i < cnt; i++) {
                rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(res[i]);
                if (terr && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                    const char *why = rd_kafka_topic_result_error_string(res[i]);
                    fprintf(stderr, "kafka_check: cannot create %s: %s\n",
                            rd_kafka_topic_result_name(res[i]), why ? why : rd_kafka_err2str(terr));
                    rc = 1;
                }
            }
        }
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
    }
    for (int i = 0; i < n_new; i++)
        rd_kafka_NewTopic_destroy(nts[i]);
    if (rc)
        return rc;
    /* Created is not yet usable: wait (within this try) until every partition leads. */
    for (int attempt = 0; attempt < 50; attempt++) {
        if (rd_kafka_metadata(rk, 1, NULL, &md, TIMEOUT_MS))
            continue;
        int ok = 1;
        leaderless = 0;
        for (int t = 0; t < n; t++)
            ok = ok && partitions_of(md, names[t], &leaderless) == parts[t];
        rd_kafka_metadata_destroy(md);
        if (ok && !leaderless)
            return 0;
        rd_kafka_poll(rk, 200);
    }
    fprintf(stderr, "kafka_check: the topics have no leader for every partition yet\n");
    return 1;
}

static int check_topics(const char *bootstrap, int argc, char **argv)
{
    char *names[MAX_TOPICS];
    int parts[MAX_TOPICS];
    if (argc > MAX_TOPICS) {
        fprintf(stderr, "kafka_check: at most %d topics at once\n", MAX_TOPICS);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        char *colon = strrchr(argv[i], ':');
        char *end = NULL;
        long p = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == argv[i] || !*(colon + 1) || *end || p < 1 || p > 100000) {
            fprintf(stderr, "kafka_check: '%s' is not NAME:PARTITIONS\n", argv[i]);
            return 2;
        }
        *colon = '\0';
        names[i] = argv[i];
        parts[i] = (int)p;
    }
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    if (!rk)
        return 1;
    int rc = create_topics(rk, names, parts, argc, -1);
    rd_kafka_destroy(rk);
    return rc;
}

static int txn_fail(const char *step, rd_kafka_error_t *error)
{
    fprintf(stderr, "kafka_check: transactions do not work yet (%s: %s)\n", step,
            rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return 1;
}

static int check_txn(const char *bootstrap, int rf)
{
    rd_kafka_t *admin = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    if (!admin)
        return 1;
    char *name = CHECK_TOPIC;
    int one = 1;
    int rc = create_topics(admin, &name, &one, 1, rf);
    rd_kafka_destroy(admin);
    if (rc)
        return rc;
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, bootstrap, "eddy-kafka-check");
    if (!rk)
        return 1;
    const rd_kafka_vu_t record[] = {
        {.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = CHECK_TOPIC},
        {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {"ok", 2}},
        {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
    };
    rd_kafka_error_t *error;
    if ((error = rd_kafka_init_transactions(rk, TIMEOUT_MS)))
        rc = txn_fail("InitProducerId", error);
    else if ((error = rd_kafka_begin_transaction(rk)))
        rc = txn_fail("begin", error);
    else if ((error = rd_kafka_produceva(rk, record, 3)))
        rc = txn_fail("produce", error);
    else if ((error = rd_kafka_commit_transaction(rk, TIMEOUT_MS)))
        rc = txn_fail("commit", error);
    rd_kafka_destroy(rk);
    return rc;
}

static int check_group(const char *bootstrap)
{
    char errstr[ERRSTR_BYTES];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const settings[][2] = {
        {"bootstrap.servers", bootstrap}, {"group.id", "eddy-kafka-check"}, {"log_level", "0"},
        {"enable.auto.commit", "false"},  {"socket.timeout.ms", "5000"},
    };
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr))) {
            fprintf(stderr, "kafka_check: %s\n", errstr);
            rd_kafka_conf_destroy(conf);
            return 1;
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka_check: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, CHECK_TOPIC, 0)->offset = 1;
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, offsets, 0);
    if (!err)
        err = offsets->elems[0].err;
    rd_kafka_topic_partition_list_destroy(offsets);
    if (err)
        fprintf(stderr, "kafka_check: consumer groups do not work yet (offset commit: %s)\n",
                rd_kafka_err2str(err));
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[2], "group"))
        return check_group(argv[1]);
    if (argc < 4 || !strcmp(argv[1], "--help")) {
        fprintf(stderr,
                "usage: kafka_check BOOTSTRAP ready N | txn RF | group | topic NAME:P...\n");
        return argc < 4 ? 2 : 0;
    }
    const char *bootstrap = argv[1], *what = argv[2];
    if (!strcmp(what, "ready"))
        return check_ready(bootstrap, atoi(argv[3]));
    if (!strcmp(what, "txn"))
        return check_txn(bootstrap, atoi(argv[3]));
    if (!strcmp(what, "topic"))
        return check_topics(bootstrap, argc - 3, argv + 3);
    fprintf(stderr, "kafka_check: unknown check '%s'\n", what);
    return 2;
}
