# Builds a real Django user table (Debian's python3-django, SQLite) and dumps it to CSV the way the
# README's "Migrating users" section says: one SQL query mapping auth_user to Latchkey's columns.
# argv: OUT.csv, then a JSON list of {username, email, password, hasher?, active?}.
import csv, json, os, sqlite3, sys, tempfile

import django
from django.conf import settings

out_path, spec = sys.argv[1], json.loads(sys.argv[2])
db_path = os.path.join(tempfile.mkdtemp(prefix='django-users-'), 'db.sqlite3')
settings.configure(
    DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': db_path}},
    INSTALLED_APPS=['django.contrib.contenttypes', 'django.contrib.auth'],
    USE_TZ=True,
    PASSWORD_HASHERS=[
        'django.contrib.auth.hashers.PBKDF2PasswordHasher',
        'django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher',
        'django.contrib.auth.hashers.Argon2PasswordHasher',
        'django.contrib.auth.hashers.BCryptSHA256PasswordHasher',
        'django.contrib.auth.hashers.BCryptPasswordHasher',
    ],
)
django.setup()
from django.core.management import call_command
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User

call_command('migrate', verbosity=0)
for user in spec:
    created = User.objects.create_user(user['username'], user['email'], user['password'])
    if user.get('hasher'):
        created.password = make_password(user['password'], hasher=user['hasher'])
    created.is_active = user.get('active', True)
    created.save()

# The dump query of the README (on PostgreSQL: \copy (...) to 'users.csv' csv header).
QUERY = """
select id, username, email, password as password_hash,
       case when is_active then 'active' else 'disabled' end as status,
       date_joined as created_at
from auth_user order by id
"""
connection = sqlite3.connect(db_path)
cursor = connection.execute(QUERY)
with open(out_path, 'w', newline='') as out:
    writer = csv.writer(out)
    writer.writerow([column[0] for column in cursor.description])
    writer.writerows(cursor)
