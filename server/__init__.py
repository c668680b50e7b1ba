"""How gunicorn serves the app beyond its settings (gunicorn.conf.py): body_deadline closes
connections whose request body arrives too slowly."""
