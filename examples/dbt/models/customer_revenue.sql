select c.id as customer_id, c.name, c.country, count(o.id) as orders, coalesce(sum(o.amount), 0) as revenue
from {{ ref('customers') }} as c
left join {{ ref('raw_orders') }} as o on o.customer_id = c.id
group by all
