SELECT order_date, count(*) AS orders
FROM orders
WHERE order_date = '{{ ds }}'
GROUP BY order_date;
