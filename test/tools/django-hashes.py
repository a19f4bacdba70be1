# Prints, as JSON, hashes of argv[1] made by Django's own make_password (Debian's python3-django),
# by passlib (PHC scrypt and argon2) and by the bcrypt module ($2a$), for the foreign-hash tests.
import base64, hashlib, json, secrets, sys

import django
from django.conf import settings

settings.configure(PASSWORD_HASHERS=[
    'django.contrib.auth.hashers.PBKDF2PasswordHasher',
    'django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher',
    'django.contrib.auth.hashers.Argon2PasswordHasher',
    'django.contrib.auth.hashers.BCryptSHA256PasswordHasher',
    'django.contrib.auth.hashers.BCryptPasswordHasher',
])
django.setup()
from django.contrib.auth.hashers import make_password
import bcrypt
from passlib.hash import scrypt as passlib_scrypt, argon2 as passlib_argon2

password = sys.argv[1]
out = {name: make_password(password, hasher=name)
       for name in ['pbkdf2_sha256', 'pbkdf2_sha1', 'argon2', 'bcrypt_sha256', 'bcrypt']}


def django_scrypt(password, n=2 ** 14, r=8, p=1):
    # Django >= 4.0's ScryptPasswordHasher.encode; Debian 12 ships Django 3.2, which lacks it.
    salt = secrets.token_hex(11)
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, dklen=64)
    return 'scrypt$%s$%d$%d$%d$%s' % (salt, n, r, p, base64.b64encode(digest).decode('ascii').strip())


out['scrypt'] = django_scrypt(password)
out['phc_scrypt'] = passlib_scrypt.using(rounds=14).hash(password)
out['phc_argon2'] = passlib_argon2.hash(password)
out['bcrypt_2a'] = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6, prefix=b'2a')).decode()
print(json.dumps(out))
