"""Example instance configuration: copy to instance/config.py and adjust. Never commit the real file.

Precedence: registry/kernel/config.py defaults < this file < DATABASE_URL < REGISTRY_* environment variables.
"""

# Deployment behind HTTPS (nginx): secure cookies, SameSite, 8-hour sessions, X-Forwarded-* headers trusted.
PRODUCTION = True
PROXY_COUNT = 1

# PostgreSQL for offices that outgrow one machine (DATABASE_URL in the environment works too).
SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://registry:CHANGE-ME@127.0.0.1:5432/registry"

# The secret key is generated into instance/secret_key on first run; set it here only to share one
# key between several application hosts.
# SECRET_KEY = "…64 random hex characters…"

ORG_NAME = "四川省东西部协作工作办公室"
ITEMS_PER_PAGE = 25
LOGIN_FAILURE_LIMIT = 5
LOGIN_FAILURE_WINDOW_MINUTES = 15
