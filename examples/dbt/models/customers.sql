-- the config() form of the hook: the snapshot is taken after the model's work is committed
{{ config(post_hook=snapshot.after_model()) }}

select id, name, country
from {{ ref('raw_customers') }}
